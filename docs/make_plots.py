"""Write the wiring plots of the tutorials: ``docs/_static/wirings/<ClassName>.png``.

One small instance of every wiring class, drawn with ``layout="layered"`` (sensory inputs on
the left, then each layer of the circuit in signal order). Run from anywhere:

    python docs/make_plots.py

The instances are small so that every synapse stays visible; the tutorials build circuits of
similar sizes. Each PNG must stay under ``MAX_BYTES`` (the script fails otherwise).
"""

from __future__ import annotations

import os
import sys

import matplotlib

matplotlib.use("Agg")

from ncps_mlx.viz import save_wiring_plot  # noqa: E402
from ncps_mlx.wirings import (  # noqa: E402
    NCP,
    AdaptiveWiring,
    AttentionWiring,
    AutoNCP,
    CrossAttentionWiring,
    DynamicRoutingWiring,
    FullyConnected,
    HierarchicalWiring,
    LanguageWiring,
    MetaWiring,
    MultiScaleWiring,
    Random,
    SignalProcessingWiring,
    VisionWiring,
    merge_wirings,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_static", "wirings")
DPI = 80
MAX_BYTES = 150_000


def adaptive():
    """An AdaptiveWiring after one prune-and-grow update (importance: the synapses' order)."""
    wiring = AdaptiveWiring(Random(10, 2, sparsity_level=0.7, random_seed=1), prune_fraction=0.3)
    wiring.build(3)
    wiring.update_connectivity(importance_scores=range(wiring.synapse_count))
    return wiring


def examples():
    """``{class name: (wiring, input_dim)}``, one small instance per wiring class."""
    return {
        "FullyConnected": (FullyConnected(6, output_dim=2), 3),
        "Random": (Random(10, output_dim=2, sparsity_level=0.7), 3),
        "NCP": (NCP(6, 4, 2, 2, 2, recurrent_command_synapses=3, motor_fanin=2), 4),
        "AutoNCP": (AutoNCP(16, 2), 4),
        "MultiScaleWiring": (MultiScaleWiring(4, 4, 4, 2), 3),
        "HierarchicalWiring": (HierarchicalWiring([6, 5, 4, 2]), 3),
        "AttentionWiring": (AttentionWiring(4, 2, 4, output_size=2), 3),
        "CrossAttentionWiring": (CrossAttentionWiring(4, 4, 4, 2), 3),
        "SignalProcessingWiring": (SignalProcessingWiring(8, 3, 4), 8),
        "VisionWiring": (VisionWiring(4, 4, [1, 2]), 16),
        "LanguageWiring": (LanguageWiring(4, 4, 2, 2), 4),
        "DynamicRoutingWiring": (DynamicRoutingWiring(2, 2, num_input_capsules=3), 3),
        "AdaptiveWiring": (adaptive(), 3),
        "MetaWiring": (MetaWiring(4, 4, 2), 3),
        "ComposedWiring": (
            merge_wirings(AutoNCP(10, 2), Random(5, 2, 0.5), cross_fan_in=1, seed=0),
            3,
        ),
    }


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    too_big = []
    for name, (wiring, input_dim) in examples().items():
        wiring.build(input_dim)
        assert type(wiring).__name__ == name, (name, type(wiring).__name__)
        path = os.path.join(OUT, f"{name}.png")
        save_wiring_plot(wiring, path, figsize=(7, 4.5), dpi=DPI, layout="layered", node_size=120)
        size = os.path.getsize(path)
        print(f"{path}: {wiring.units} neurons, {wiring.synapse_count} synapses, {size} bytes")
        if size > MAX_BYTES:
            too_big.append(path)
    if too_big:
        print(f"larger than {MAX_BYTES} bytes: {too_big}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
