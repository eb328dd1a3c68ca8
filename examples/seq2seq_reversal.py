"""Sequence reversal with ``LiquidSeq2Seq``: a bidirectional CfC encoder, a transformer decoder.

    python examples/seq2seq_reversal.py          # ~65 s on a 2-core CPU
    python examples/seq2seq_reversal.py --long   # longer sequences, LTC encoder option, more data

Each source is a sequence of 4–8 random digits (padded to 8, with a mask); the target is the
same digits reversed, then an end token. The script trains with teacher forcing
(``ncps_mlx.training.fit``), then decodes the test set with greedy search, beam search and
nucleus sampling, and prints token and whole-sequence accuracy and decoding time per strategy,
with and without the KV cache.
"""

from __future__ import annotations

import argparse
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from ncps_mlx.hybrid import LiquidSeq2Seq
from ncps_mlx.training import fit

DIGITS, START, END, PAD = 10, 10, 11, 11  # target vocabulary: 10 digits, START, END (= PAD)

SETTINGS = {
    "fast": {"min_len": 4, "max_len": 8, "train": 6000, "epochs": 4, "units": 32, "d_model": 48},
    "long": {"min_len": 6, "max_len": 16, "train": 20000, "epochs": 8, "units": 64, "d_model": 64},
}


def reversal_data(rng, count, min_len, max_len):
    """Padded sources ``(N, max_len)``, their masks, decoder inputs and labels ``(N, max_len+1)``.

    Labels past the end token are ``-1`` (ignored by the loss)."""
    lengths = rng.integers(min_len, max_len + 1, count)
    source = rng.integers(0, DIGITS, (count, max_len)).astype(np.int32)
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    source[~mask] = 0
    labels = np.full((count, max_len + 1), -1, np.int32)
    for row, length in enumerate(lengths):
        labels[row, :length] = source[row, :length][::-1]
        labels[row, length] = END
    inputs = np.concatenate([np.full((count, 1), START), np.where(labels < 0, PAD, labels)], 1)
    return source, mask, inputs[:, :-1].astype(np.int32), labels


def loss_fn(model, source, mask, inputs, labels):
    """Cross-entropy over the label positions (``labels >= 0``)."""
    logits = model(source, inputs, source_mask=mask)
    valid = labels >= 0
    losses = nn.losses.cross_entropy(logits, mx.maximum(labels, 0), reduction="none")
    return (losses * valid).sum() / valid.sum()


def score(tokens: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Token accuracy over label positions and the share of exactly right sequences."""
    width = min(tokens.shape[1], labels.shape[1])
    padded = np.full(labels.shape, -2, np.int32)
    padded[:, :width] = tokens[:, :width]
    valid = labels >= 0
    token_accuracy = ((padded == labels) & valid).sum() / valid.sum()
    return float(token_accuracy), float(((padded == labels) | ~valid).all(axis=1).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="longer sequences, more data")
    parser.add_argument("--encoder", choices=("cfc", "ltc"), default="cfc")
    parser.add_argument("--epochs", type=int, help="override the setting's number of epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args()
    settings = SETTINGS["long" if args.long else "fast"]
    epochs = settings["epochs"] if args.epochs is None else args.epochs
    rng = np.random.default_rng(args.seed)
    span = (settings["min_len"], settings["max_len"])
    train = reversal_data(rng, settings["train"], *span)
    source, mask, _, labels = reversal_data(rng, 500, *span)
    mx.random.seed(args.seed)
    model = LiquidSeq2Seq(
        16,
        DIGITS + 2,
        d_model=settings["d_model"],
        num_layers=1,
        num_heads=4,
        encoder=args.encoder,
        encoder_units=settings["units"],
        bidirectional=True,
        source_vocab_size=DIGITS,
    )
    steps = epochs * -(-settings["train"] // 64)
    optimizer = optim.Adam(learning_rate=optim.cosine_decay(3e-3, steps, 1e-4))
    started = time.perf_counter()
    history = fit(
        model,
        loss_fn,
        optimizer,
        train,
        epochs=epochs,
        batch_size=64,
        seed=args.seed,
        progress=args.progress,
    )
    print(
        f"reversal of {span[0]}-{span[1]} digits, {args.encoder} encoder: trained "
        f"{epochs} epochs in {time.perf_counter() - started:.1f} s, final loss "
        f"{history.epochs[-1]['train_loss']:.4f}"
    )
    source, mask = mx.array(source), mx.array(mask)
    strategies = {
        "greedy": {},
        "beam search (4 beams)": {"num_beams": 4},
        "nucleus sampling (p=0.9, T=0.7)": {"temperature": 0.7, "top_p": 0.9, "seed": 1},
    }
    print(f"{'decoding':34} {'token acc':>9} {'seq acc':>8} {'cached s':>9} {'uncached s':>10}")
    for name, options in strategies.items():
        times = []
        for use_cache in (True, False):
            started = time.perf_counter()
            tokens = model.generate(
                source,
                START,
                END,
                max_length=settings["max_len"] + 1,
                source_mask=mask,
                use_cache=use_cache,
                **options,
            )
            times.append(time.perf_counter() - started)
        token_accuracy, sequence_accuracy = score(np.array(tokens), labels)
        print(
            f"{name:34} {100 * token_accuracy:8.1f}% {100 * sequence_accuracy:7.1f}% "
            f"{times[0]:9.2f} {times[1]:10.2f}"
        )


if __name__ == "__main__":
    main()
