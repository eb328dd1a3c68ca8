"""Self-describing model files: weights in a ``.safetensors`` file whose metadata holds the
class name, the constructor arguments and, for wired models, the wiring's config (JSON), so that
:func:`load_model` rebuilds the model from the file alone; nothing in a file is ever executed.

Classes are found by name in :data:`MODEL_CLASSES`, which sequence modules fill by registering
themselves (:func:`register`); this module imports none of them.
"""

from __future__ import annotations

import json
import os

import mlx.core as mx
from mlx.utils import tree_flatten

from ..wirings import Wiring

__all__ = ["MODEL_CLASSES", "register", "save_model", "load_model"]

_METADATA_KEY = "ncps_mlx"
_FORMAT_VERSION = 1


#: Sequence-module classes by name: the classes a model file may name (see :func:`register`).
MODEL_CLASSES: dict[str, type] = {}


def register(cls: type) -> type:
    """Let :func:`load_model` rebuild ``cls`` from a file that names it; returns ``cls``.

    :class:`~ncps_mlx.sequence.LiquidSequence` registers each of its public subclasses when
    the class is defined, so a model file never makes this module import the model classes.
    """
    MODEL_CLASSES[cls.__name__] = cls
    return cls


def save_model(model, path: str | os.PathLike) -> None:
    """Write ``model``'s parameters to ``path`` (safetensors) with what rebuilds it.

    The metadata holds the class name, the constructor arguments and, for wired models, the
    wiring's config (synapse list), as JSON.
    """
    classes = MODEL_CLASSES
    name = type(model).__name__
    if classes.get(name) is not type(model):
        raise TypeError(f"save_model supports {sorted(classes)}, got {name}")
    wiring = getattr(model, "wiring", None)
    description = {
        "version": _FORMAT_VERSION,
        "class": name,
        "config": model._config,
        "wiring": None if model._config["units"] is not None else wiring.get_config(),
    }
    weights = dict(tree_flatten(model.parameters()))
    mx.save_safetensors(os.fspath(path), weights, metadata={_METADATA_KEY: json.dumps(description)})


def _read_description(path) -> tuple[dict, dict]:
    try:
        weights, metadata = mx.load(os.fspath(path), format="safetensors", return_metadata=True)
    except (RuntimeError, ValueError, OSError) as error:
        raise ValueError(
            f"{os.fspath(path)!r} is not a readable safetensors file: {error}"
        ) from None
    if _METADATA_KEY not in metadata:
        raise ValueError(f"{os.fspath(path)!r} was not written by ncps_mlx.io.save_model")
    try:
        description = json.loads(metadata[_METADATA_KEY])
    except json.JSONDecodeError:
        raise ValueError(f"{os.fspath(path)!r} has corrupt ncps_mlx metadata") from None
    if not isinstance(description, dict) or description.get("version") != _FORMAT_VERSION:
        raise ValueError(f"{os.fspath(path)!r} has an unsupported ncps_mlx format version")
    return weights, description


def load_model(path: str | os.PathLike):
    """Rebuild a model written by :func:`save_model` and load its weights.

    Raises:
        ValueError: If the file is not a safetensors file written by :func:`save_model`, names an
            unknown class, or its weights do not fit the rebuilt model.
    """
    weights, description = _read_description(path)
    cls = MODEL_CLASSES.get(description.get("class"))
    if cls is None:
        raise ValueError(
            f"{os.fspath(path)!r} names an unknown model class {description.get('class')!r}"
        )
    config = description.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{os.fspath(path)!r} has no model config in its metadata")
    try:
        if config.get("units") is None:
            config = dict(config, units=Wiring.from_config(description.get("wiring")))
        model = cls(**config)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{os.fspath(path)!r} has a config that does not fit {cls.__name__}: {error}"
        ) from None
    model.load_weights(list(weights.items()), strict=True)
    return model
