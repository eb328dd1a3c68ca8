"""Exact parameter counts of the hybrid layers, from their options alone (nothing is built).

Each function mirrors its layer's constructor (same defaults); ``tests/test_hybrid_builder.py``
checks every one against the built layer for several option sets. Masked (wired) weights are
parameters too, so counts do not depend on a projection wiring; only a liquid layer's wiring
(its circuit) matters.
"""

from __future__ import annotations

import math

import numpy as np

from ..wirings import AutoNCP, Wiring

__all__ = ["LAYER_PARAMETER_COUNTS"]


def _linear(inputs: int, outputs: int, bias: bool = True) -> int:
    return inputs * outputs + (outputs if bias else 0)


def _ffn(d, hidden=None, **_):
    hidden = 4 * d if hidden is None else hidden
    return _linear(d, hidden) + _linear(hidden, d)


def _conv(d, kernel_size=4, expand=2, **_):
    inner = expand * d
    return _linear(d, 2 * inner) + inner * kernel_size + inner + _linear(inner, d)


def _kan(d, grid_size=5, spline_order=3, **_):
    return _linear(d, d) + (grid_size + spline_order) * d * d


def _attention(d, num_heads=4, head_dim=None, **_):
    inner = num_heads * (d // num_heads if head_dim is None else head_dim)
    return 3 * _linear(d, inner) + _linear(inner, d)


def _conv_attention(d, kernel_size=4, num_heads=4, head_dim=None, **_):
    gate = _linear(2 * d, d)
    return _conv(d, kernel_size) + _attention(d, num_heads, head_dim) + gate


def _mamba(d, state_size=16, expand_factor=2, conv_width=4, dt_rank=None, **_):
    inner, rank = expand_factor * d, math.ceil(d / 16) if dt_rank is None else dt_rank
    convolution = inner * conv_width + inner
    selection = _linear(inner, rank + 2 * state_size, False) + _linear(rank, inner)
    return (
        _linear(d, 2 * inner, False)
        + convolution
        + selection
        + inner * state_size
        + inner
        + _linear(inner, d, False)
    )


def _gla(d, num_heads=4, head_dim=None, gate_rank=16, **_):
    head_dim = d // num_heads if head_dim is None else head_dim
    inner = num_heads * head_dim
    projections = 3 * _linear(d, inner, False) + _linear(d, inner) + _linear(inner, d, False)
    return projections + _linear(d, gate_rank, False) + _linear(gate_rank, inner) + head_dim


def _rwkv(d, head_size=64, ffn_hidden=None, decay_rank=64, mix_rank=32, **_):
    hidden = int(3.5 * d) if ffn_hidden is None else ffn_hidden
    mixing = 5 * d + d + _linear(d, 5 * mix_rank, False) + 5 * _linear(mix_rank, d, False)
    time_mix = (
        5 * _linear(d, d, False) + _linear(d, decay_rank, False) + _linear(decay_rank, d, False)
    )
    vectors = d + d + 2 * d  # decay base, bonus (H x K = d), group norm weight and bias
    channel_mix = (
        2 * d + 2 * d + _linear(d, hidden, False) + _linear(hidden, d, False) + _linear(d, d, False)
    )
    return mixing + time_mix + vectors + channel_mix


def _liquid(d, kind="cfc", units=32, features=None, wiring=None, **_):
    features = min(d, 16) if features is None else features
    wiring = AutoNCP(units, features) if wiring is None else Wiring.from_config(wiring.get_config())
    wiring.build(features)
    cell = _wired_cfc(wiring, features) if kind == "cfc" else _ltc(wiring, features)
    return _linear(d, features) + cell + _linear(wiring.output_dim, d)


def _wired_cfc(wiring: Wiring, features: int) -> int:
    total, inputs = 0, features
    for layer in range(wiring.num_layers):
        size = len(wiring.get_neurons_of_layer(layer))
        total += 4 * _linear(inputs + size, size)  # ff1, ff2, time_a, time_b (mode "default")
        inputs = size
    return total


def _ltc(wiring: Wiring, features: int) -> int:
    n = wiring.units

    def synapse_parameters(synapses, sources):
        fan_in = np.bincount(synapses[1], minlength=n).max(initial=0)
        width = max(int(fan_in), 1)
        return 4 * (n * width if 2 * width <= sources else sources * n)  # see LTCCell(sparse=None)

    internal = synapse_parameters(wiring.synapses(), n)
    sensory = synapse_parameters(wiring.sensory_synapses(), features)
    return 3 * n + internal + sensory + 2 * features + 2 * wiring.output_dim


#: Layer name -> ``count(d_model, **constructor_options)``.
LAYER_PARAMETER_COUNTS = {
    "ffn": _ffn,
    "conv": _conv,
    "kan": _kan,
    "attention": _attention,
    "conv_attention": _conv_attention,
    "mamba": _mamba,
    "gla": _gla,
    "rwkv": _rwkv,
    "cfc": lambda d, **kw: _liquid(d, "cfc", **kw),
    "ltc": lambda d, **kw: _liquid(d, "ltc", **kw),
}
