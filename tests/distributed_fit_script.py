"""Run by tests/test_training_features.py: data-parallel `fit` under `mlx.launch`, or the
single-process reference on the combined batch.

    mlx.launch --backend ring -n 2 --python PYTHON tests/distributed_fit_script.py OUT_DIR OPT
    PYTHON tests/distributed_fit_script.py OUT_DIR OPT --single

OPT is ``sgd`` or ``adam``. Each process writes its final weights to
OUT_DIR/<rank{r}|single>-OPT.safetensors and its step losses to OUT_DIR/<...>-OPT.txt.

Every process computes on the CPU, whatever the machine's default device: the ring backend
communicates through the CPU, and on a GPU the two sides would otherwise differ by more than
the data-parallel arithmetic (kernels reduce batches of 4 and of 8 rows in different orders,
which Adam amplifies).
"""

import os
import sys

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

from ncps_mlx import CfC
from ncps_mlx.training import distributed, fit

PER_RANK_BATCH, RANKS = 4, 2


OPTIMIZERS = {"sgd": lambda: optim.SGD(learning_rate=0.05), "adam": lambda: optim.Adam(0.01)}


def main(out_dir: str, optimizer: str, single: bool) -> None:
    mx.set_default_device(mx.cpu)
    group = None if single else distributed.init()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 6, 3)).astype(np.float32)  # 37 rows: the last batch is uneven
    y = np.sin(x.sum(axis=(1, 2)))[:, None].astype(np.float32)
    mx.random.seed(0)
    model = CfC(3, 8, proj_size=1, return_sequences=False)

    def loss_fn(model, x, y):
        return ((model(x)[0] - y) ** 2).mean()

    batch_size = PER_RANK_BATCH * RANKS if single else PER_RANK_BATCH
    history = fit(
        model,
        loss_fn,
        OPTIMIZERS[optimizer](),
        (x, y),
        epochs=3,
        batch_size=batch_size,
        clip_norm=1.0,
        group=group,
        progress=False,
    )
    name = ("single" if single else f"rank{group.rank()}") + f"-{optimizer}"
    mx.save_safetensors(
        os.path.join(out_dir, f"{name}.safetensors"), dict(tree_flatten(model.parameters()))
    )
    with open(os.path.join(out_dir, f"{name}.txt"), "w") as handle:
        handle.write("\n".join(repr(loss) for loss in history.step_losses))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--single" in sys.argv)
