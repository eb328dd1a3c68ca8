"""Checkpoints: exact resume, atomic writes, and clear errors for bad files."""

import hashlib
import json
import os
import shutil

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

from ncps_mlx import CfC
from ncps_mlx.training.checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    random_key,
    save_checkpoint,
    set_random_key,
)
from ncps_mlx.wirings import AutoNCP

DATA = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
TARGET = np.random.default_rng(1).normal(size=(4, 5, 8)).astype(np.float32)


def make(seed=0, units=8):
    """A small CfC and Adam on a cosine schedule (the step counter drives the learning rate)."""
    mx.random.seed(seed)
    model = CfC(3, units)
    return model, optim.Adam(learning_rate=optim.cosine_decay(1e-2, 10))


def train(model, optimizer, steps):
    def loss_fn(model, x, y):
        return nn.losses.mse_loss(model(x)[0], y)

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    for _ in range(steps):
        _, grads = loss_and_grad(model, mx.array(DATA), mx.array(TARGET))
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)


def params(model):
    return {name: np.array(value) for name, value in tree_flatten(model.parameters())}


def assert_same(left, right):
    assert left.keys() == right.keys()
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)


def saved(tmp_path, step=3, name="ck", model=None, optimizer=None, state=None):
    """A checkpoint of a model trained ``step`` steps; returns its path."""
    if model is None:
        model, optimizer = make()
        train(model, optimizer, step)
    path = tmp_path / name
    save_checkpoint(path, model, optimizer, step=step, epoch=1, state=state)
    return path


def rewrite_manifest(path):
    """Make the manifest agree with the files again (a forged but consistent checkpoint)."""
    index = json.loads((path / "checkpoint.json").read_text())
    for name in index["manifest"]:
        data = (path / name).read_bytes()
        index["manifest"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (path / "checkpoint.json").write_text(json.dumps(index))


def edit_index(path, **changes):
    index = json.loads((path / "checkpoint.json").read_text())
    index.update(changes)
    (path / "checkpoint.json").write_text(json.dumps(index))


def edit_weights(path, edit):
    weights = mx.load(str(path / "model.safetensors"))
    edit(weights)
    mx.save_safetensors(str(path / "model.safetensors"), weights)
    rewrite_manifest(path)


# ---------------------------------------------------------------------- exact resume
def test_resumed_training_matches_uninterrupted_training(tmp_path):
    model, optimizer = make()
    train(model, optimizer, 3)
    path = saved(tmp_path, step=3, model=model, optimizer=optimizer, state={"rng": [1, 2]})
    at_checkpoint = params(model)
    train(model, optimizer, 3)

    resumed, resumed_optimizer = make(seed=1)
    info = load_checkpoint(path, resumed, resumed_optimizer)
    assert info == {"step": 3, "epoch": 1, "state": {"rng": [1, 2]}}
    assert_same(params(resumed), at_checkpoint)
    train(resumed, resumed_optimizer, 3)
    assert_same(params(resumed), params(model))
    assert resumed_optimizer.step.item() == optimizer.step.item() == 6
    assert resumed_optimizer.learning_rate.item() == optimizer.learning_rate.item()


def test_resume_without_the_optimizer_state_would_differ(tmp_path):
    """The exact-resume test is sensitive: weights alone with a fresh Adam do not reproduce it."""
    model, optimizer = make()
    train(model, optimizer, 3)
    path = saved(tmp_path, model=model, optimizer=optimizer)
    train(model, optimizer, 3)
    weights_only, discarded_optimizer = make(seed=1)
    load_checkpoint(path, weights_only, discarded_optimizer)
    train(weights_only, make()[1], 3)
    assert not np.array_equal(
        params(weights_only)["rnn_cell.ff1.weight"], params(model)["rnn_cell.ff1.weight"]
    )


def test_index_describes_step_state_model_and_files(tmp_path):
    mx.random.seed(0)
    model = CfC(3, AutoNCP(8, 2, seed=3))
    path = saved(tmp_path, model=model, optimizer=optim.Adam(1e-3), state={"history": [0.5]})
    index = json.loads((path / "checkpoint.json").read_text())
    assert (index["format"], index["version"], index["step"]) == ("ncps-mlx-checkpoint", 1, 3)
    assert index["state"] == {"history": [0.5]}
    assert index["model"]["class"] == "ncps_mlx.sequence.cfc.CfC"
    assert index["model"]["wirings"] == {
        "wiring": json.loads(json.dumps(model.wiring.get_config()))
    }
    data = (path / "model.safetensors").read_bytes()
    assert index["manifest"]["model.safetensors"] == {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_state_must_be_json_serialisable(tmp_path):
    model, optimizer = make()
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "ck", model, optimizer, step=0, epoch=0, state={"x": object()})
    assert not os.listdir(tmp_path)


def test_random_key_restores_mlx_draws():
    mx.random.seed(7)
    mx.random.normal((3,))
    key = random_key()
    expected = np.array(mx.random.normal((4,)))
    mx.random.seed(99)
    set_random_key(json.loads(json.dumps(key)))
    np.testing.assert_array_equal(np.array(mx.random.normal((4,))), expected)


# ---------------------------------------------------------------------- atomic writes
def test_failed_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    first = saved(tmp_path, step=1, name=checkpoint_path(".", 1).name)
    model, optimizer = make()

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        save_checkpoint(checkpoint_path(tmp_path, 2), model, optimizer, step=2, epoch=0)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["step-000001"]
    assert latest_checkpoint(tmp_path) == first
    assert load_checkpoint(first, *make())["step"] == 1


def test_killed_mid_write_leaves_no_checkpoint_under_the_final_name(tmp_path, monkeypatch):
    """A process killed while writing the optimizer file gets no cleanup at all."""
    first = saved(tmp_path, step=1, name="step-000001")
    model, optimizer = make()
    real_save = mx.save_safetensors

    def dies_after_half(file, arrays, **kwargs):
        real_save(file, arrays, **kwargs)
        if "optimizer" in file:
            with open(file, "r+b") as handle:
                handle.truncate(os.path.getsize(file) // 2)
            raise KeyboardInterrupt

    monkeypatch.setattr(mx, "save_safetensors", dies_after_half)
    monkeypatch.setattr(shutil, "rmtree", lambda *args, **kwargs: None)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "step-000002", model, optimizer, step=2, epoch=0)
    monkeypatch.undo()
    assert not (tmp_path / "step-000002").exists()
    assert [name for name in os.listdir(tmp_path) if name.startswith(".step-000002")]
    assert latest_checkpoint(tmp_path) == first


def test_overwriting_a_checkpoint_is_all_or_nothing(tmp_path, monkeypatch):
    path = saved(tmp_path, step=1)
    model, optimizer = make()
    real_replace, calls = os.replace, []

    def second_rename_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("crash between renames")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_rename_fails)
    with pytest.raises(OSError, match="between renames"):
        save_checkpoint(path, model, optimizer, step=2, epoch=0)
    monkeypatch.undo()
    assert load_checkpoint(path, *make())["step"] == 1
    save_checkpoint(path, model, optimizer, step=2, epoch=0)
    assert load_checkpoint(path, *make())["step"] == 2
    assert os.listdir(tmp_path) == ["ck"]


def test_latest_checkpoint_picks_highest_complete_step(tmp_path):
    model, optimizer = make()
    for step in (1, 5, 3, 9):
        save_checkpoint(checkpoint_path(tmp_path, step), model, optimizer, step=step, epoch=0)
    broken = checkpoint_path(tmp_path, 9) / "model.safetensors"
    broken.write_bytes(broken.read_bytes()[:-10])
    shutil.copytree(checkpoint_path(tmp_path, 5), tmp_path / ".step-000012.tmp-abc")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    (tmp_path / "empty").mkdir()
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 5)


def test_latest_checkpoint_of_empty_or_missing_directory_is_none(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    assert latest_checkpoint(tmp_path / "missing") is None


# ---------------------------------------------------------------------- bad checkpoints
def flip_bytes(path):
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-8:] = bytes(255 - byte for byte in data[-8:])
    (path / "model.safetensors").write_bytes(bytes(data))


def random_safetensors(path):
    size = (path / "model.safetensors").stat().st_size
    (path / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(size))
    rewrite_manifest(path)


def malicious_version(path):
    edit_index(path, version="__import__('os').system('touch " + str(path / "PWNED") + "')")


def manifest_escape(path):
    index = json.loads((path / "checkpoint.json").read_text())
    index["manifest"]["../../etc/passwd"] = {"bytes": 1, "sha256": "0" * 64}
    (path / "checkpoint.json").write_text(json.dumps(index))


def other_wiring():
    mx.random.seed(0)
    return CfC(3, AutoNCP(8, 2, seed=2)), optim.Adam(1e-3)


def sgd():
    mx.random.seed(0)
    return CfC(3, 8), optim.SGD(1e-2, momentum=0.9)


BAD = {
    "missing json": (lambda p: (p / "checkpoint.json").unlink(), None, "has no checkpoint.json"),
    "json not json": (
        lambda p: (p / "checkpoint.json").write_bytes(b"\x80PK\x03\x04"),
        None,
        "not valid JSON",
    ),
    "json not ours": (
        lambda p: (p / "checkpoint.json").write_text('{"format": "keras", "version": 1}'),
        None,
        "not an ncps-mlx checkpoint",
    ),
    "newer version": (lambda p: edit_index(p, version=2), None, "version 2, written by a newer"),
    "malicious string": (malicious_version, None, 'checkpoint format version "__import__'),
    "invalid step": (lambda p: edit_index(p, step="3"), None, r"invalid \['step'\]"),
    "truncated model": (
        lambda p: (p / "model.safetensors").write_bytes(
            (p / "model.safetensors").read_bytes()[:100]
        ),
        None,
        r"model.safetensors' has 100 bytes.*truncated",
    ),
    "flipped bytes": (flip_bytes, None, "model.safetensors' does not match its SHA-256"),
    "manifest hash mismatch": (
        lambda p: edit_index(
            p,
            manifest={
                **json.loads((p / "checkpoint.json").read_text())["manifest"],
                "optimizer.safetensors": {
                    "bytes": (p / "optimizer.safetensors").stat().st_size,
                    "sha256": "f" * 64,
                },
            },
        ),
        None,
        "optimizer.safetensors' does not match its SHA-256",
    ),
    "manifest lists foreign file": (manifest_escape, None, "the manifest lists"),
    "missing optimizer file": (
        lambda p: (p / "optimizer.safetensors").unlink(),
        None,
        "optimizer.safetensors' is missing",
    ),
    "random bytes as safetensors": (random_safetensors, None, "not a readable safetensors file"),
    "empty directory": (lambda p: shutil.rmtree(p) or p.mkdir(), None, "has no checkpoint.json"),
    "a file, not a directory": (
        lambda p: shutil.rmtree(p) or p.write_text("{}"),
        None,
        "not a checkpoint directory",
    ),
    "extra parameter": (
        lambda p: edit_weights(p, lambda w: w.update(extra=mx.zeros((2,)))),
        None,
        r"unexpected \['extra'\]",
    ),
    "missing parameter": (
        lambda p: edit_weights(p, lambda w: w.pop("rnn_cell.ff2.bias")),
        None,
        r"parameters missing \['rnn_cell.ff2.bias'\]",
    ),
    "different model (wrong shapes)": (
        lambda p: None,
        lambda: make(units=6),
        r"mismatched \[.*'rnn_cell.ff1.weight: \(8, 128\) mlx.core.float32, expected \(6, 128\)",
    ),
    "different wiring, same shapes": (
        lambda p: None,
        other_wiring,
        r"other wirings at \['wiring'\]",
    ),
    "different optimizer": (
        lambda p: None,
        sgd,
        r"entries unexpected \['rnn_cell.backbone.0.bias.m'",
    ),
}


@pytest.mark.parametrize("corrupt, target, message", BAD.values(), ids=BAD.keys())
def test_bad_checkpoints_raise_clear_errors_and_change_nothing(tmp_path, corrupt, target, message):
    if target is other_wiring:
        mx.random.seed(0)
        model = CfC(3, AutoNCP(8, 2, seed=1))
        path = saved(tmp_path, model=model, optimizer=optim.Adam(1e-3))
    else:
        path = saved(tmp_path)
    corrupt(path)
    model, optimizer = (target or make)()
    before = params(model)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, model, optimizer)
    assert_same(params(model), before)
    assert not (path / "PWNED").exists()
