"""Weights in and out: ncps (PyTorch) state dicts, and safetensors files that rebuild a model.

``load_ncps_state_dict`` copies an ncps 1.0.1 module's ``state_dict()`` into the matching
ncps_mlx module. ``save_model`` writes a model's weights to a ``.safetensors`` file with its
constructor arguments and wiring (JSON) in the file's metadata, so ``load_model`` rebuilds it from
the file alone; nothing in a file is ever executed (the format is defined in
:mod:`ncps_mlx.sequence.files`).
"""

from __future__ import annotations

import re

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from .sequence.files import load_model, save_model

__all__ = ["load_ncps_state_dict", "save_model", "load_model"]

_METADATA_KEY = "ncps_mlx"
_FORMAT_VERSION = 1


# ---------------------------------------------------------------------- ncps PyTorch weights
def _to_numpy(value, key: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, read without importing torch
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(
            f"state_dict[{key!r}] must be a tensor or array, got {type(value).__name__}"
        ) from None


def _backbone_renames(keys) -> dict[str, str]:
    """torch ``backbone.{i}`` indexes ncps's nn.Sequential; ours counts the Linear layers.

    ncps builds ``[Linear, act]`` then ``[Linear, act]`` per further layer, with a Dropout
    after each further layer's activation when dropout > 0: Linears sit at 0, 2, 4, ... or at
    0, 2, 5, 8, ... The layout is recognised from the indices present.

    Raises:
        ValueError: If the indices fit neither layout.
    """
    pattern = re.compile(r"^(.*backbone)\.(\d+)\.(weight|bias)$")
    by_prefix: dict[str, set[int]] = {}
    for key in keys:
        match = pattern.match(key)
        if match:
            by_prefix.setdefault(match.group(1), set()).add(int(match.group(2)))
    renames = {}
    for prefix, indices in by_prefix.items():
        if all(index % 2 == 0 for index in indices):
            layer_of = {index: index // 2 for index in indices}
        elif all(index == 0 or (index - 2) % 3 == 0 for index in indices):
            layer_of = {index: 0 if index == 0 else (index - 2) // 3 + 1 for index in indices}
        else:
            raise ValueError(
                f"unrecognised ncps backbone layout {sorted(indices)} under {prefix!r}"
            )
        for index, layer in layer_of.items():
            for kind in ("weight", "bias"):
                renames[f"{prefix}.{index}.{kind}"] = f"{prefix}.{layer}.{kind}"
    return renames


def _masks(model) -> dict[str, np.ndarray]:
    """The wiring masks ncps stores as non-trainable 'parameters', under ncps's names.

    Cells that have such masks say so through an ``ncps_buffers()`` method.
    """
    masks = {}
    for name, module in model.named_modules():
        if hasattr(module, "ncps_buffers"):
            prefix = f"{name}." if name else ""
            masks.update({prefix + key: value for key, value in module.ncps_buffers().items()})
    return masks


def _in_our_layout(model, name: str, value: np.ndarray) -> np.ndarray:
    """Let the cell owning ``name`` convert an ncps parameter to its layout (``from_ncps``)."""
    path, _, attribute = name.rpartition(".")
    owner = dict(model.named_modules()).get(path) if path else model
    return owner.from_ncps(attribute, value) if hasattr(owner, "from_ncps") else value


def load_ncps_state_dict(model, state_dict, strict: bool = True):
    """Load an ncps 1.0.1 PyTorch module's ``state_dict()`` into the equivalent ncps_mlx module.

    Parameter names follow ncps, except the CfC backbone, whose torch indices (which count
    activation and dropout modules) are renumbered. ncps's ``sparsity_mask`` entries are not
    loaded: they are compared with this model's wiring masks.

    Args:
        model: An ncps_mlx module built with the same arguments and wiring as the ncps one.
        state_dict: Mapping of names to torch tensors or numpy arrays.
        strict: Require every parameter of ``model`` to be present.

    Returns:
        The model.

    Raises:
        ValueError: On unknown names, missing parameters (if ``strict``), shape mismatches, or
            masks that differ from the model's wiring.
    """
    arrays = {key: _to_numpy(value, key) for key, value in state_dict.items()}
    renames = _backbone_renames(arrays)
    expected = dict(tree_flatten(model.parameters()))
    masks = _masks(model)
    loaded = {}
    for key, value in arrays.items():
        if key in masks:
            if value.shape != masks[key].shape or not np.array_equal(value != 0, masks[key] != 0):
                raise ValueError(f"state_dict[{key!r}] does not match this model's wiring")
            continue
        name = renames.get(key, key)
        if name in expected:
            try:
                value = _in_our_layout(model, name, value)
            except ValueError as error:
                raise ValueError(f"state_dict[{key!r}] {error}") from None
        if name not in expected:
            raise ValueError(
                f"state_dict has {key!r}, which this {type(model).__name__} does not have"
            )
        if tuple(expected[name].shape) != value.shape:
            raise ValueError(
                f"state_dict[{key!r}] has shape {value.shape}, "
                f"expected {tuple(expected[name].shape)}"
            )
        loaded[name] = mx.array(value)
    missing = sorted(set(expected) - set(loaded))
    if strict and missing:
        raise ValueError(f"state_dict is missing parameters {missing}")
    model.update(tree_unflatten(list(loaded.items())))
    return model
