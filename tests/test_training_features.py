"""fit: padded variable-length batches, clipping, early stopping, checkpoints and exact resume,
and data-parallel training over mlx.distributed (2 ranks on 127.0.0.1, ring backend)."""

import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np
import pytest

from ncps_mlx import CfC
from ncps_mlx.training import EarlyStopping, fit
from ncps_mlx.training.batching import pad_sequences, take_rows

ROOT = Path(__file__).resolve().parent.parent


def regression(rows=40, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, steps, 3)).astype(np.float32)
    return x, np.sin(x.sum(axis=(1, 2)))[:, None].astype(np.float32)


def small_model(seed=0):
    mx.random.seed(seed)
    return CfC(3, 8, proj_size=1, return_sequences=False)


def mse(model, x, y):
    return ((model(x)[0] - y) ** 2).mean()


def test_pad_sequences_pads_to_the_longest_and_masks_the_padding():
    padded, mask = pad_sequences([np.ones((2, 3)), 2 * np.ones((4, 3))], value=-1.0)
    assert padded.shape == (2, 4, 3) and mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert (padded[0, 2:] == -1).all() and (padded[1] == 2).all()
    assert pad_sequences([np.ones((5, 1))], max_length=3)[0].shape == (1, 3, 1)
    with pytest.raises(ValueError, match="trailing shapes"):
        pad_sequences([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="at least one"):
        pad_sequences([])


def test_variable_length_sequences_train_with_per_batch_padding_and_masks():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 9, 64)
    sequences = [rng.normal(size=(n, 3)).astype(np.float32) for n in lengths]
    targets = np.array([[np.tanh(s[-1, 0])] for s in sequences], np.float32)  # last real step
    x, mask, y = take_rows((sequences, targets), np.array([3, 5]))
    assert x.shape == (2, max(lengths[3], lengths[5]), 3) and mask.shape == x.shape[:2]

    def masked_loss(model, x, mask, y):
        return ((model(x, mask=mask)[0] - y) ** 2).mean()

    mx.random.seed(0)
    model = CfC(3, 16, proj_size=1, return_sequences=False)
    before = masked_loss(model, *take_rows((sequences, targets), np.arange(64))).item()
    history = fit(
        model,
        masked_loss,
        optim.Adam(0.003),  # 0.01 makes the epoch losses jump (seed-dependent pass/fail)
        (sequences, targets),
        epochs=30,
        batch_size=16,
        progress=False,
    )
    assert history.epochs[-1]["train_loss"] < 0.5 * before
    # a padded sequence's prediction equals the unpadded one's
    alone = model(mx.array(sequences[0][None]))[0]
    x, mask = take_rows((sequences,), np.array([0, int(np.argmax(lengths))]))
    padded = model(x, mask=mask)[0]
    np.testing.assert_allclose(np.array(padded[0]), np.array(alone[0]), atol=1e-5)


def test_clip_norm_rescales_every_update_to_the_norm():
    x, y = regression()
    clipped, free = small_model(), small_model()
    fit(clipped, mse, optim.SGD(1.0), (x[:8], y[:8]), batch_size=8, clip_norm=1e-3, progress=False)
    fit(free, mse, optim.SGD(1.0), (x[:8], y[:8]), batch_size=8, progress=False)
    start = dict(tree_items(small_model()))

    def step(m):
        return np.sqrt(
            sum(((np.array(v) - np.array(start[k])) ** 2).sum() for k, v in tree_items(m))
        )

    assert step(clipped) == pytest.approx(1e-3, rel=1e-3)
    assert step(free) > 1e-2
    with pytest.raises(ValueError, match="clip_norm"):
        fit(small_model(), mse, optim.SGD(1.0), (x, y), clip_norm=0.0, progress=False)


def tree_items(model):
    from mlx.utils import tree_flatten

    return tree_flatten(model.parameters())


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = regression()
    model = small_model()
    calls = []

    def metric(m):  # improves twice, then gets worse
        calls.append(1)
        return [0.5, 0.4, 0.3, 0.35, 0.36, 0.37, 0.38][len(calls) - 1]

    snapshots = []
    history = fit(
        model,
        mse,
        optim.Adam(0.01),
        (x, y),
        epochs=7,
        progress=False,
        metrics={"error": lambda m: snapshots.append(tree_items(m)) or metric(m)},
        early_stopping=EarlyStopping(monitor="error", mode="min", patience=2),
    )
    assert history.stopped_early and len(history.epochs) == 5
    for (_, restored), (_, best) in zip(tree_items(model), snapshots[2], strict=True):
        np.testing.assert_array_equal(np.array(restored), np.array(best))
    assert EarlyStopping(monitor="accuracy").mode == "max"
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,tolerance", [("sgd", 1e-6), ("adam", 1e-3)])
def test_two_ranks_on_the_ring_backend_equal_one_process_on_the_combined_batch(
    optimizer, tolerance, tmp_path
):
    """SGD matches to float32 rounding; Adam divides each gradient by its running RMS, which
    turns last-bit differences of near-zero gradients (summation order across ranks) into
    differences of up to ~1e-4 after a few steps. Both sides compute on the CPU on any
    machine (see the script), so only the data-parallel arithmetic differs."""
    launch = shutil.which("mlx.launch", path=str(Path(sys.executable).parent))
    script = str(ROOT / "tests" / "distributed_fit_script.py")
    subprocess.run(
        [sys.executable, script, str(tmp_path), optimizer, "--single"], check=True, timeout=120
    )
    subprocess.run(
        [
            launch,
            "--backend",
            "ring",
            "-n",
            "2",
            "--python",
            sys.executable,
            script,
            str(tmp_path),
            optimizer,
        ],
        check=True,
        timeout=180,
        cwd=ROOT,
    )
    single = mx.load(str(tmp_path / f"single-{optimizer}.safetensors"))
    ranks = [mx.load(str(tmp_path / f"rank{r}-{optimizer}.safetensors")) for r in (0, 1)]
    for name, value in single.items():
        np.testing.assert_array_equal(np.array(ranks[0][name]), np.array(ranks[1][name]))
        np.testing.assert_allclose(np.array(ranks[0][name]), np.array(value), atol=tolerance)
    losses = [np.loadtxt(tmp_path / f"{n}-{optimizer}.txt") for n in ("single", "rank0")]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


def dropout_model():
    mx.random.seed(0)
    return CfC(3, 8, proj_size=1, return_sequences=False, backbone_dropout=0.3)


def schedule_optimizer():
    return optim.Adam(learning_rate=optim.cosine_decay(0.02, 40, 1e-3))


def test_a_resumed_run_reproduces_the_uninterrupted_losses_and_weights(tmp_path):
    x, y = regression(rows=30)
    options = dict(batch_size=8, seed=3, progress=False, val_data=(x[:6], y[:6]))
    whole = dropout_model()
    straight = fit(
        whole, mse, schedule_optimizer(), (x, y), epochs=4, checkpoint_dir=tmp_path / "a", **options
    )

    first = dropout_model()
    fit(
        first, mse, schedule_optimizer(), (x, y), epochs=2, checkpoint_dir=tmp_path / "b", **options
    )
    resumed_model = dropout_model()  # a fresh process would start like this
    resumed = fit(
        resumed_model,
        mse,
        schedule_optimizer(),
        (x, y),
        epochs=4,
        checkpoint_dir=tmp_path / "b",
        resume=True,
        **options,
    )
    assert resumed.step_losses == straight.step_losses
    assert resumed.series("val_loss") == straight.series("val_loss")
    for (name, a), (_, b) in zip(tree_items(whole), tree_items(resumed_model), strict=True):
        np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=name)
    assert len(list((tmp_path / "b").iterdir())) == 4  # one checkpoint per epoch


def test_resume_without_a_checkpoint_starts_fresh_and_needs_a_directory(tmp_path):
    x, y = regression()
    history = fit(
        small_model(),
        mse,
        optim.SGD(0.1),
        (x, y),
        checkpoint_dir=tmp_path / "new",
        resume=True,
        progress=False,
    )
    assert len(history.epochs) == 1
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit(small_model(), mse, optim.SGD(0.1), (x, y), resume=True, progress=False)
