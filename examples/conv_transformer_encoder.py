"""Classify handwritten digits from the pooled embedding of a conv-transformer encoder.

    python examples/conv_transformer_encoder.py                  # both poolings, ~70 s (2 cores)
    python examples/conv_transformer_encoder.py --pooling mean   # one pooling
    python examples/conv_transformer_encoder.py --long           # D=64, 8 layers (~5 minutes)

Task (``ncps_mlx.datasets.load_digits_sequences``): scikit-learn's 8×8 digits as sequences of
8 rows (time steps) of 8 pixels. A ``ConvTransformerEncoder`` (the ``conv_transformer``
pattern: causal conv, attention, conv–attention fusion and feed-forward blocks) encodes each
sequence; a linear head classifies its pooled embedding (``pooling="mean"`` or
``"attention"``). Training: cross-entropy, Adam with a cosine decay to 5 % of the learning
rate, batches of 32 (``ncps_mlx.training.fit_classifier``). The script prints the layer pattern, the
parameter counts (the encoder's body checked against ``HybridBuilder.param_count``), and for
each pooling the test accuracy and the seconds per epoch.
"""

from __future__ import annotations

import argparse
import time

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from ncps_mlx.datasets import load_digits_sequences
from ncps_mlx.hybrid import ConvTransformerEncoder, HybridBuilder
from ncps_mlx.training import fit_classifier

SETTINGS = {  # encoder width, blocks, heads, epochs, learning rate
    "fast": {"d_model": 32, "num_layers": 4, "num_heads": 2, "epochs": 12, "learning_rate": 3e-3},
    "long": {"d_model": 64, "num_layers": 8, "num_heads": 4, "epochs": 15, "learning_rate": 2e-3},
}
KERNEL_SIZE, BATCH_SIZE = 3, 32


class PooledClassifier(nn.Module):
    """``x`` ``(B, T, F)`` -> logits ``(B, C)``: a linear head on the encoder's pooled output."""

    def __init__(self, encoder: ConvTransformerEncoder, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.d_model, num_classes)

    def __call__(self, x: mx.array) -> mx.array:
        return self.head(self.encoder(x)[1])


def count(module: nn.Module) -> int:
    return sum(array.size for _, array in tree_flatten(module.parameters()))


def train_one(pooling: str, settings: dict, data, args) -> None:
    mx.random.seed(args.seed)
    encoder = ConvTransformerEncoder(
        data.x_train.shape[-1],
        settings["d_model"],
        settings["num_layers"],
        kernel_size=KERNEL_SIZE,
        num_heads=settings["num_heads"],
        pooling=pooling,
    )
    body = HybridBuilder.param_count(
        encoder.body.pattern,
        encoder.input_size,
        encoder.d_model,
        conv_kernel_size=KERNEL_SIZE,
        attention_num_heads=settings["num_heads"],
    )
    assert body == count(encoder.body), (body, count(encoder.body))
    model = PooledClassifier(encoder, data.num_classes)
    history = fit_classifier(
        model,
        data,
        settings["epochs"],
        settings["learning_rate"],
        BATCH_SIZE,
        args.seed,
        progress=args.progress,
    )
    seconds = history.series("seconds")
    print(
        f"pooling={pooling:9} parameters {count(model):,} (body {body:,} = param_count), "
        f"test accuracy {100 * history.epochs[-1]['test_accuracy']:.1f}% "
        f"(best {100 * max(history.series('test_accuracy')):.1f}%), "
        f"test loss {history.epochs[-1]['test_loss']:.3f}, "
        f"{sum(seconds) / len(seconds):.2f} s/epoch"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pooling", choices=("mean", "attention", "both"), default="both")
    parser.add_argument(
        "--long", action="store_true", help="D=64, 8 layers, 15 epochs (~5 minutes)"
    )
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    args = parser.parse_args()
    settings = dict(SETTINGS["long" if args.long else "fast"])
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    data = load_digits_sequences(seed=args.seed)
    pattern, _ = HybridBuilder.named_pattern("conv_transformer", settings["num_layers"])
    print(
        f"digits: {len(data.y_train)} train / {len(data.y_test)} test sequences of 8 steps × 8 "
        f"pixels; D={settings['d_model']}, {settings['num_heads']} heads, kernel {KERNEL_SIZE}, "
        f"{settings['epochs']} epochs, batch {BATCH_SIZE}"
    )
    print(HybridBuilder.visualize(pattern))
    started = time.perf_counter()
    for pooling in ("mean", "attention") if args.pooling == "both" else (args.pooling,):
        train_one(pooling, settings, data, args)
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
