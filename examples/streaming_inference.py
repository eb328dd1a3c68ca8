"""Stream a long signal through a liquid and a hybrid model in chunks, with constant memory.

    python examples/streaming_inference.py           # ~65 s on a 2-core CPU
    python examples/streaming_inference.py --long    # 10x longer streams (~10 min)
    python examples/streaming_inference.py --scale 0.01  # a quick check

The signal (a noisy sum of two sines sampled at irregular times) is generated chunk by chunk,
so the whole stream never exists in memory. ``ncps_mlx.streaming.StreamingRunner`` feeds the
chunks to a ``CfC(2, AutoNCP(16, 1))`` (with each step's elapsed time as ``timespans``) and to
a hybrid stack ``mamba → attention → gla → rwkv → conv → ffn`` whose attention has a sliding
window. For each model the script first checks that a prefix streamed in chunks of random
lengths gives the outputs of one whole-sequence call, then streams the long signal and prints
the steps per second, the active MLX memory after a tenth of the stream and at its end, the
peak memory and the size of the carried state.
"""

from __future__ import annotations

import argparse
import time

import mlx.core as mx
import numpy as np

from ncps_mlx import CfC
from ncps_mlx.hybrid import HybridBuilder
from ncps_mlx.streaming import StreamingRunner
from ncps_mlx.wirings import AutoNCP

#: Steps streamed through each model, by run length.
STEPS = {
    "fast": {"liquid": 50_000, "hybrid": 200_000},
    "long": {"liquid": 500_000, "hybrid": 2_000_000},
}
HYBRID_PATTERN = ["mamba", "attention", "gla", "rwkv", "conv", "ffn"]


class Signal:
    """A noisy two-sine signal at irregular times, produced in consecutive chunks.

    Each chunk is ``(1, T, 2)`` (the sample and its time gap) with the gaps ``(1, T)``.
    """

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.time = 0.0

    def next(self, length: int):
        gaps = self.rng.uniform(0.02, 0.2, length)
        times = self.time + np.cumsum(gaps)
        self.time = float(times[-1])
        values = np.sin(times) + 0.5 * np.sin(3.1 * times) + 0.1 * self.rng.normal(size=length)
        chunk = np.stack([values, gaps], axis=-1)[None].astype(np.float32)
        return mx.array(chunk), mx.array(gaps[None].astype(np.float32))


def chunk_lengths(total: int, longest: int, seed: int):
    """Random chunk lengths in ``1..longest`` that add up to ``total``."""
    rng = np.random.default_rng(seed)
    while total > 0:
        length = min(total, int(rng.integers(1, longest + 1)))
        total -= length
        yield length


def check_against_whole_call(model, liquid: bool, steps: int = 500) -> float:
    """Max |difference| between a prefix streamed in random chunks and one whole call."""
    x, gaps = Signal(seed=1).next(steps)
    extra = {"timespans": gaps} if liquid else {}
    whole, _ = model(x, **extra)
    runner, outputs, start = StreamingRunner(model), [], 0
    for length in chunk_lengths(steps, 64, seed=2):
        part = {name: a[:, start : start + length] for name, a in extra.items()}
        outputs.append(runner(x[:, start : start + length], **part))
        start += length
    return mx.abs(mx.concatenate(outputs, axis=1) - whole).max().item()


def stream(model, liquid: bool, steps: int, chunk_length: int) -> dict:
    """Stream ``steps`` steps in chunks of ``chunk_length`` (the last one may be shorter);
    the speed, and the memory after a tenth of the stream and at its end."""
    runner, signal = StreamingRunner(model), Signal(seed=0)
    mx.reset_peak_memory()
    early, started = None, time.perf_counter()
    while runner.steps_seen < steps:
        chunk, gaps = signal.next(min(chunk_length, steps - runner.steps_seen))
        runner(chunk, timespans=gaps if liquid else None)
        if early is None and runner.steps_seen >= steps // 10:
            early = (runner.steps_seen, mx.get_active_memory())
    seconds = time.perf_counter() - started
    return {
        "steps_per_second": steps / seconds,
        "early": early,
        "end": mx.get_active_memory(),
        "peak": mx.get_peak_memory(),
        "state": runner.state_nbytes,
    }


def report(name: str, difference: float, steps: int, chunk_length: int, result: dict) -> None:
    kib = 1024
    seen, early = result["early"]
    print(name)
    print(f"  chunked vs whole call (500 steps): max |difference| {difference:.1e}")
    speed = result["steps_per_second"]
    print(f"  {steps:,} steps in chunks of {chunk_length:,}: {speed:,.0f} steps/s")
    print(
        f"  active memory {early / kib:,.1f} KiB after {seen:,} steps, "
        f"{result['end'] / kib:,.1f} KiB after {steps:,}; peak {result['peak'] / kib:,.1f} KiB; "
        f"state {result['state']:,} bytes"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="stream 10x more steps")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the stream lengths")
    args = parser.parse_args(argv)
    steps = {
        k: max(1, int(v * args.scale)) for k, v in STEPS["long" if args.long else "fast"].items()
    }

    mx.random.seed(0)
    liquid = CfC(2, AutoNCP(16, 1, seed=0))
    hybrid = HybridBuilder.build(
        HYBRID_PATTERN,
        embed_size=2,
        hidden_size=32,
        attention_num_heads=2,
        attention_window_size=64,
        gla_num_heads=2,
        rwkv_head_size=16,
        mamba_state_size=8,
    )
    for name, model, is_liquid, chunk_length in (
        ("CfC(2, AutoNCP(16, 1)) with timespans", liquid, True, 2000),
        ("Hybrid " + " → ".join(HYBRID_PATTERN) + " (attention window 64)", hybrid, False, 1000),
    ):
        kind = "liquid" if is_liquid else "hybrid"
        difference = check_against_whole_call(model, is_liquid)
        result = stream(model, is_liquid, steps[kind], chunk_length)
        report(name, difference, steps[kind], chunk_length, result)


if __name__ == "__main__":
    main()
