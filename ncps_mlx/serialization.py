"""Weights in and out: ncps (PyTorch) state dicts, and safetensors files that rebuild a model.

``load_ncps_state_dict`` copies an ncps 1.0.1 module's ``state_dict()`` into the matching
ncps_mlx module, and ``export_ncps_state_dict`` is its inverse: the state dict of an ncps
module with the same arguments. ``save_model`` writes a model's weights to a ``.safetensors``
file with its constructor arguments and wiring (JSON) in the file's metadata, so
``load_model`` rebuilds it from the file alone; nothing in a file is ever executed (the format
is defined in :mod:`ncps_mlx.sequence.files`).
"""

from __future__ import annotations

import re

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from .cells import CfCCell, LSTMCell, LTCCell, WiredCfCCell
from .sequence import LTC, CfC
from .sequence.files import load_model, save_model
from .wirings.ncps_configs import ncps_layers

__all__ = ["load_ncps_state_dict", "export_ncps_state_dict", "save_model", "load_model"]

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


_BACKBONE_KEY = re.compile(r"^(.*backbone)\.(\d+)\.(weight|bias)$")


def _ncps_backbone_index(layer: int, dropout: bool) -> int:
    """Where ncps's ``nn.Sequential`` backbone holds Linear number ``layer``.

    ncps builds ``[Linear, act]`` then ``[Linear, act]`` per further layer, with a Dropout
    after each further layer's activation when dropout > 0: Linears sit at 0, 2, 4, ... or at
    0, 2, 5, 8, ...
    """
    return 0 if layer == 0 else 2 + (3 if dropout else 2) * (layer - 1)


def _backbone_renames(keys) -> dict[str, str]:
    """torch ``backbone.{i}`` indexes ncps's nn.Sequential; ours counts the Linear layers.

    The layout (with or without dropout, :func:`_ncps_backbone_index`) is recognised from the
    indices present.

    Raises:
        ValueError: If the indices fit neither layout.
    """
    by_prefix: dict[str, set[int]] = {}
    for key in keys:
        match = _BACKBONE_KEY.match(key)
        if match:
            by_prefix.setdefault(match.group(1), set()).add(int(match.group(2)))
    renames = {}
    for prefix, indices in by_prefix.items():
        for dropout in (False, True):
            layer_of = {_ncps_backbone_index(i, dropout): i for i in range(max(indices) + 1)}
            if indices <= layer_of.keys():
                break
        else:
            raise ValueError(
                f"unrecognised ncps backbone layout {sorted(indices)} under {prefix!r}"
            )
        for index in indices:
            for kind in ("weight", "bias"):
                renames[f"{prefix}.{index}.{kind}"] = f"{prefix}.{layer_of[index]}.{kind}"
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


def _owner(model, name: str):
    """The module holding parameter ``name`` of ``model``, and the parameter's own name."""
    path, _, attribute = name.rpartition(".")
    return (dict(model.named_modules()).get(path) if path else model), attribute


def _in_our_layout(model, name: str, value: np.ndarray) -> np.ndarray:
    """Let the cell owning ``name`` convert an ncps parameter to its layout (``from_ncps``)."""
    owner, attribute = _owner(model, name)
    return owner.from_ncps(attribute, value) if hasattr(owner, "from_ncps") else value


def _in_ncps_layout(model, name: str, value: mx.array) -> np.ndarray:
    """Let the cell owning ``name`` convert a parameter to ncps's layout (``to_ncps``)."""
    owner, attribute = _owner(model, name)
    value = np.array(value.astype(mx.float32))
    return owner.to_ncps(attribute, value) if hasattr(owner, "to_ncps") else value


def _ncps_name(model, name: str) -> str:
    """ncps's name of our parameter ``name``: the same, but for backbone Linears."""
    match = _BACKBONE_KEY.match(name)
    if match is None:
        return name
    cell, _ = _owner(model, match.group(1))  # the cell whose ``backbone`` this is
    index = _ncps_backbone_index(int(match.group(2)), cell.backbone_dropout > 0)
    return f"{match.group(1)}.{index}.{match.group(3)}"


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


def export_ncps_state_dict(model) -> dict[str, np.ndarray]:
    """The ``state_dict()`` of the ncps 1.0.1 PyTorch module equivalent to ``model``, as numpy.

    The inverse of :func:`load_ncps_state_dict`. ``ncps.torch``'s module of the same class,
    built with the same arguments and with the wiring
    :func:`~ncps_mlx.wirings.ncps_configs.to_ncps_wiring` gives, loads it with
    ``load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})`` and then computes
    this model's outputs (to float32 rounding). Every parameter is exported as float32 in
    ncps's dense layout, under ncps's name (backbone Linears renumbered), with ncps's
    ``sparsity_mask`` buffers made from the wiring. Synapse parameters kept in the fan-in
    layout (``sparse``) come back 0 where ncps's masks are 0, so importing an ncps state dict
    and exporting it again gives the same tensors except at those masked-out entries.

    Args:
        model: An :class:`~ncps_mlx.sequence.LTC`, :class:`~ncps_mlx.sequence.CfC`,
            :class:`~ncps_mlx.cells.LTCCell`, :class:`~ncps_mlx.cells.CfCCell`,
            :class:`~ncps_mlx.cells.WiredCfCCell` or :class:`~ncps_mlx.cells.LSTMCell`.

    Returns:
        Names to float32 arrays.

    Raises:
        TypeError: If ``model`` is not one of those classes (e.g. a hybrid model or CTRNN).
        ValueError: If it uses what ncps lacks, named in the message: an LTC solver other than
            ``"semi_implicit"``, Hebbian fast weights, routing, quantized layers, or in a wired
            CfC a wiring whose layers, outputs or neuron time scales ncps's cell cannot have.
    """
    _check_ncps_counterpart(model)
    state = {
        _ncps_name(model, name): _in_ncps_layout(model, name, value)
        for name, value in tree_flatten(model.parameters())
    }
    state.update(_masks(model))
    return state


_NCPS_MODULES = (LTC, CfC, LTCCell, CfCCell, WiredCfCCell, LSTMCell)


def _check_ncps_counterpart(model) -> None:
    """Raise unless ``model`` and every module in it have an ncps 1.0.1 counterpart."""
    if not isinstance(model, _NCPS_MODULES):
        names = ", ".join(cls.__name__ for cls in _NCPS_MODULES)
        raise TypeError(f"{type(model).__name__} has no ncps counterpart (ncps.torch has {names})")
    for path, module in model.named_modules():
        if "scales" in module:
            raise ValueError(
                f"{path or type(model).__name__} is quantized: ncps has no quantized layers "
                "(export the float model)"
            )
        problem = _ncps_lacks(module)
        if problem:
            raise ValueError(f"{type(model).__name__}: {problem}, which ncps 1.0.1 lacks")


def _ncps_lacks(module) -> str | None:
    """What of a cell ncps's cell of the same class cannot do, or None."""
    if isinstance(module, LTCCell):
        return module.beyond_ncps()
    if isinstance(module, WiredCfCCell):
        return _wired_cfc_lacks(module.wiring)
    return None


def _wired_cfc_lacks(wiring) -> str | None:
    """What of a wired CfC over ``wiring`` ncps's ``WiredCfCCell`` over its counterpart lacks."""
    name = type(wiring).__name__
    layers = [list(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]
    if layers != ncps_layers(wiring):
        return (
            f"a wired CfC over a {name} with layers of sizes {[len(n) for n in layers]} "
            "(ncps's counterpart wiring has one layer of all neurons, or an NCP's three)"
        )
    if layers[-1] != list(range(wiring.output_dim)):
        return (
            f"a wired CfC over a {name} whose last layer ({len(layers[-1])} neurons) is not its "
            f"{wiring.output_dim} motor neurons (ncps's cell outputs its whole last layer)"
        )
    if not np.all(wiring.neuron_time_scales() == 1):
        return f"a wired CfC over a {name} with neuron time scales other than 1"
    return None
