"""Training checkpoints: model weights, optimizer state, wiring and step, written atomically.

A checkpoint is a directory (by convention ``<dir>/step-000123``, see :func:`checkpoint_path`)
holding three files:

- ``model.safetensors``: every model parameter, under its ``tree_flatten`` name;
- ``optimizer.safetensors``: the optimizer's state tree (e.g. Adam's ``m``/``v`` per parameter,
  its ``step`` counter and ``learning_rate``), flattened the same way;
- ``checkpoint.json``: format tag and version, ``step``, ``epoch``, the caller's JSON ``state``
  (shuffling RNG, history, ...), a description of the model (class, constructor config, wiring
  configs) and a manifest of the byte size and SHA-256 of both safetensors files.

:func:`save_checkpoint` writes into a hidden temporary sibling directory, fsyncs it and renames
it into place, so a crash leaves the previous checkpoint or none under the final name, never a
partial one. :func:`load_checkpoint` checks the format, the manifest, and that every parameter
and optimizer entry matches the model by name, shape and dtype before restoring anything. Only
JSON and safetensors are read: nothing in a checkpoint is ever executed.

MLX's global random key (used by dropout) is not part of the model or optimizer; a training
loop that needs exact resume stores :func:`random_key` in ``state`` and restores it with
:func:`set_random_key`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from .._validation import check_int
from ..wirings import Wiring

__all__ = [
    "CheckpointError",
    "checkpoint_path",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "random_key",
    "set_random_key",
]

FORMAT = "ncps-mlx-checkpoint"
VERSION = 1
_INDEX = "checkpoint.json"
_MODEL = "model.safetensors"
_OPTIMIZER = "optimizer.safetensors"
_DATA_FILES = (_MODEL, _OPTIMIZER)


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupt, foreign, or does not fit the model."""


def checkpoint_path(directory: str | os.PathLike, step: int) -> Path:
    """The conventional checkpoint directory of ``step`` in ``directory``: ``step-000123``."""
    return Path(directory) / f"step-{check_int(step, 'step', minimum=0):06d}"


# ---------------------------------------------------------------------- writing
def save_checkpoint(
    path: str | os.PathLike, model, optimizer, step: int, epoch: int, state: dict | None = None
) -> None:
    """Write a checkpoint of ``model`` and ``optimizer`` to the directory ``path``, atomically.

    An existing checkpoint at ``path`` is replaced only once the new one is complete.

    Args:
        path: The checkpoint directory (e.g. :func:`checkpoint_path` output).
        model: An ``mlx.nn.Module``.
        optimizer: An ``mlx.optimizers`` optimizer; its whole ``state`` tree is saved (an
            optimizer that has not stepped yet is initialised first, as its first update would).
        step: Optimizer steps taken so far (``latest_checkpoint`` orders by it).
        epoch: Epochs completed so far.
        state: JSON-serialisable dict of whatever else resuming needs; it comes back as
            ``json.loads`` returns it (tuples as lists, keys as strings).

    Raises:
        TypeError: If ``state`` is not a JSON-serialisable dict or the optimizer state holds
            something other than arrays.
        FileExistsError: If ``path`` is an existing file (not a directory).
    """
    step, epoch = check_int(step, "step", minimum=0), check_int(epoch, "epoch", minimum=0)
    state = _checked_state({} if state is None else state)
    optimizer_arrays = _optimizer_arrays(model, optimizer)
    target = Path(path)
    if os.path.lexists(target) and not target.is_dir():
        raise FileExistsError(f"{os.fspath(target)!r} exists and is not a checkpoint directory")
    index = {"format": FORMAT, "version": VERSION, "step": step, "epoch": epoch, "state": state}
    index["model"] = _describe(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        _write_safetensors(staging / _MODEL, dict(tree_flatten(model.parameters())))
        _write_safetensors(staging / _OPTIMIZER, optimizer_arrays)
        index["manifest"] = {name: _file_record(staging / name) for name in _DATA_FILES}
        with open(staging / _INDEX, "w", encoding="utf-8") as handle:
            json.dump(index, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync(staging)
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _checked_state(state) -> dict:
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    try:
        json.dumps(state)
    except (TypeError, ValueError) as error:
        raise TypeError(f"state must be JSON-serialisable: {error}") from None
    return state


def _optimizer_arrays(model, optimizer) -> dict:
    """The optimizer's flattened state, initialised first as its first update would."""
    optimizer.init(model.trainable_parameters())
    arrays = dict(tree_flatten(optimizer.state))
    odd = sorted(name for name, value in arrays.items() if not isinstance(value, mx.array))
    if odd:
        raise TypeError(f"optimizer state entries {odd} are not arrays; cannot save them")
    return arrays


def _describe(model) -> dict:
    """Class, constructor config and the config of every distinct Wiring the model holds."""
    wirings, seen = {}, set()
    for name, module in model.named_modules():
        for attribute, value in vars(module).items():
            if isinstance(value, Wiring) and id(value) not in seen:
                seen.add(id(value))
                wirings[f"{name}.{attribute}" if name else attribute] = value.get_config()
    config = json.loads(json.dumps(getattr(model, "_config", None), default=repr))
    name = f"{type(model).__module__}.{type(model).__qualname__}"
    return {"class": name, "config": config, "wirings": wirings}


def _write_safetensors(path: Path, arrays: dict) -> None:
    mx.save_safetensors(os.fspath(path), arrays)
    _fsync(path)


def _fsync(path: Path) -> None:
    """Flush a file's or a directory's entries to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the complete ``staging`` directory to ``target``; an old ``target`` is renamed
    away first and deleted only after the new one is in place (restored if that fails)."""
    if not os.path.lexists(target):
        os.replace(staging, target)
        _fsync(target.parent)
        return
    retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
    os.replace(target, retired)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired, target)
        raise
    _fsync(target.parent)
    shutil.rmtree(retired)


def _file_record(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


# ---------------------------------------------------------------------- reading
def load_checkpoint(path: str | os.PathLike, model, optimizer) -> dict:
    """Restore ``model``'s parameters and ``optimizer``'s state, in place, from a checkpoint.

    Everything is checked before anything is restored: the format and version, the manifest
    (sizes and hashes), the wirings, and that parameters and optimizer entries match ``model``
    and ``optimizer`` by name, shape and dtype. On error the model is unchanged (a fresh
    optimizer may have been initialised, as its first update would). The optimizer continues
    exactly where the saved one stopped (its step counter, hence any learning-rate schedule,
    included).

    Args:
        path: A checkpoint directory written by :func:`save_checkpoint`.
        model: A module built like the saved one.
        optimizer: An optimizer of the saved one's type (fresh or used).

    Returns:
        ``{"step": int, "epoch": int, "state": dict}`` as saved.

    Raises:
        CheckpointError: If the checkpoint is missing, incomplete, corrupt, foreign, of a newer
            format version, or does not fit ``model`` / ``optimizer``.
    """
    root = Path(path)
    index = _read_index(root)
    _verify_files(root, index["manifest"])
    _check_wirings(root, index, model)
    parameters = _read_arrays(root / _MODEL)
    _check_match(root / _MODEL, "parameters", parameters, dict(tree_flatten(model.parameters())))
    optimizer.init(model.trainable_parameters())
    entries = _read_arrays(root / _OPTIMIZER)
    _check_match(root / _OPTIMIZER, "entries", entries, dict(tree_flatten(optimizer.state)))
    model.update(tree_unflatten(list(parameters.items())))
    optimizer.state = tree_unflatten(list(entries.items()))
    return {"step": index["step"], "epoch": index["epoch"], "state": index["state"]}


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The complete checkpoint with the highest step among ``directory``'s subdirectories.

    Hidden entries (the temporary directories of unfinished writes) and directories that are not
    complete, verified checkpoints are skipped. Returns None if there is none.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = []
    for entry in directory.iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            index = _read_index(entry)
        except CheckpointError:
            continue
        found.append((index["step"], entry.name, entry, index["manifest"]))
    for _, _, entry, manifest in sorted(found, reverse=True):
        try:
            _verify_files(entry, manifest)
        except CheckpointError:
            continue
        return entry
    return None


def _read_index(root: Path) -> dict:
    """``checkpoint.json``, checked for format, version and field types."""
    if not root.is_dir():
        raise CheckpointError(f"{os.fspath(root)!r} is not a checkpoint directory")
    try:
        document = json.loads((root / _INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{os.fspath(root)!r} has no {_INDEX}: not an ncps-mlx checkpoint, or an unfinished one"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(f"{os.fspath(root / _INDEX)!r} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{os.fspath(root / _INDEX)!r} is not an ncps-mlx checkpoint index")
    version = document.get("version")
    if not _is_count(version) or version != VERSION:
        newer = _is_count(version) and version > VERSION
        raise CheckpointError(
            f"{os.fspath(root)!r} has checkpoint format version {version!r}"
            + (", written by a newer ncps-mlx" if newer else "")
            + f"; this ncps-mlx reads version {VERSION}"
        )
    fields = {
        "step": _is_count,
        "epoch": _is_count,
        "state": _is_dict,
        "manifest": _is_dict,
        "model": lambda model: _is_dict(model) and _is_dict(model.get("wirings")),
    }
    bad = [key for key, valid in fields.items() if not valid(document.get(key))]
    if bad:
        raise CheckpointError(f"{os.fspath(root / _INDEX)!r} has missing or invalid {bad}")
    return document


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_dict(value) -> bool:
    return isinstance(value, dict)


def _verify_files(root: Path, manifest: dict) -> None:
    """Check that the manifest lists exactly the data files and that each has its recorded size
    and SHA-256 (a truncated, extended or altered file fails here)."""
    if set(manifest) != set(_DATA_FILES):
        raise CheckpointError(
            f"{os.fspath(root)!r}: the manifest lists {sorted(manifest)}, "
            f"expected {sorted(_DATA_FILES)}"
        )
    for name in _DATA_FILES:
        path, record = root / name, manifest[name]
        if not (_is_dict(record) and _is_count(record.get("bytes"))):
            raise CheckpointError(f"{os.fspath(root)!r}: invalid manifest entry for {name}")
        if not path.is_file():
            raise CheckpointError(f"{os.fspath(path)!r} is missing")
        if path.stat().st_size != record["bytes"]:
            raise CheckpointError(
                f"{os.fspath(path)!r} has {path.stat().st_size} bytes, the manifest records "
                f"{record['bytes']} (truncated or replaced)"
            )
        if _file_record(path)["sha256"] != record.get("sha256"):
            raise CheckpointError(f"{os.fspath(path)!r} does not match its SHA-256: corrupt")


def _check_wirings(root: Path, index: dict, model) -> None:
    """Same-shaped parameters can belong to other circuits: the wiring configs must agree."""
    saved = index["model"]["wirings"]
    ours = json.loads(json.dumps(_describe(model)["wirings"]))
    differing = sorted(key for key in set(saved) | set(ours) if saved.get(key) != ours.get(key))
    if differing:
        raise CheckpointError(
            f"{os.fspath(root)!r} was saved from a model with other wirings at {differing}"
        )


def _read_arrays(path: Path) -> dict:
    try:
        return mx.load(os.fspath(path), format="safetensors")
    except (RuntimeError, ValueError, OSError) as error:
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a readable safetensors file: {error}"
        ) from None


def _check_match(path: Path, what: str, loaded: dict, expected: dict) -> None:
    """Raise listing missing, unexpected and mismatched (shape or dtype) names."""
    missing = sorted(set(expected) - set(loaded))
    extra = sorted(set(loaded) - set(expected))
    mismatched = [
        f"{name}: {tuple(loaded[name].shape)} {loaded[name].dtype}, expected "
        f"{tuple(expected[name].shape)} {expected[name].dtype}"
        for name in sorted(set(loaded) & set(expected))
        if loaded[name].shape != expected[name].shape or loaded[name].dtype != expected[name].dtype
    ]
    problems = [
        f"{label} {items}"
        for label, items in (
            ("missing", missing),
            ("unexpected", extra),
            ("mismatched", mismatched),
        )
        if items
    ]
    if problems:
        raise CheckpointError(f"{os.fspath(path)!r} does not fit: {what} " + "; ".join(problems))


# ---------------------------------------------------------------------- MLX's random key
def random_key() -> list[int]:
    """MLX's global random key (two uint32 words) as JSON-safe ints, for a checkpoint's state."""
    return [int(word) for word in np.array(mx.random.state[0])]


def set_random_key(key: list[int]) -> None:
    """Make MLX's global random key ``key`` (from :func:`random_key`), so later draws repeat.

    ``mx.random.seed(s)`` sets the key to the two 32-bit halves of ``s``, which is how the key
    is restored (MLX 0.32 offers no setter for ``mx.random.state``).
    """
    if len(key) != 2:
        raise ValueError(f"an MLX random key has 2 words, got {key!r}")
    high, low = (check_int(word, "key word", minimum=0, maximum=2**32 - 1) for word in key)
    mx.random.seed((high << 32) | low)
