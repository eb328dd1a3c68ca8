"""Sigmoid and tanh for the cells' hot loops, fast on MLX's CPU backend.

MLX's CPU backend evaluates ``mx.sigmoid``, ``mx.tanh`` and ``mx.exp`` one element at a time
through the C library (about 20 ns per element on the 2-core Linux machines we measure on,
versus about 0.4 ns for a fused multiply-add in a compiled kernel). The LTC cell evaluates one
sigmoid per synapse, batch row and solver iteration, so these calls decide its speed on the CPU.

Here the exponential is computed from arithmetic that ``mx.compile`` fuses into one kernel:
:math:`e^{-x} = 2^t` with :math:`t = -x \\log_2 e`, split into :math:`t = n + f` with
:math:`n` the nearest integer (found by the float32 round-to-nearest trick of adding
:math:`1.5 \\cdot 2^{23}`) and :math:`|f| \\le 1/2`; :math:`2^f` is a degree-5 polynomial
(near-minimax, relative error below :math:`10^{-7}`) and :math:`2^n` is written directly into
the exponent bits. The result is within :math:`1.1 \\cdot 10^{-7}` (absolute) of the exact
sigmoid over all float32 inputs, as close as ``mx.sigmoid`` itself (tested), and about 4.5x
faster on the CPU inside a compiled step. Gradients use the exact identities
:math:`\\sigma' = \\sigma (1 - \\sigma)` and :math:`\\tanh' = 1 - \\tanh^2` on the computed value.

The polynomial form pays off on large arrays only: its bit manipulations split the fused
kernel, and on small arrays (a CfC's ``(batch, hidden)`` gates) the extra kernel launches cost
more than the transcendental calls they replace (measured: a CfC(16, 64) train step at batch 32
ran 1.5-2.5x slower with it). So it is used for arrays of at least :data:`POLYNOMIAL_MIN_SIZE`
elements (an LTC's ``(batch, neurons, fan-in)`` synapse activations), decided when the step is
traced. On a GPU (Metal, CUDA) MLX's own kernels are fast, so :func:`sigmoid` and :func:`tanh`
are ``mx.sigmoid`` and ``mx.tanh`` there: which one runs is decided by the default device at
call time. Inputs in float16/bfloat16 also use MLX's functions (the bit trick is float32's).
"""

from __future__ import annotations

import mlx.core as mx

__all__ = ["sigmoid", "tanh", "uses_polynomial", "POLYNOMIAL_MIN_SIZE"]

#: Smallest array (in elements) for which the CPU uses the polynomial form.
POLYNOMIAL_MIN_SIZE = 32768

# 2**f ~ sum(c_k f**k) on [-1/2, 1/2]: a near-minimax fit (Lawson's weighted least squares),
# relative error 7.5e-8 before rounding the coefficients to float32.
_EXP2_COEFFICIENTS = (1.0000001, 0.69314694, 0.2402212, 0.05550713, 0.00967554, 0.00132765)
_LOG2E = 1.4426950408889634
_ROUNDING_SHIFT = 12582912.0  # 1.5 * 2**23: adding it rounds a float32 to an integer
_SHIFT_BITS = 0x4B400000  # the bits of _ROUNDING_SHIFT as float32
_EXPONENT_BIAS = 127


def uses_polynomial(x: mx.array) -> bool:
    """Whether :func:`sigmoid`/:func:`tanh` use the polynomial form for ``x`` now: float32
    arrays of at least :data:`POLYNOMIAL_MIN_SIZE` elements on the CPU (the default device)."""
    return x.dtype == mx.float32 and x.size >= POLYNOMIAL_MIN_SIZE and mx.default_device() == mx.cpu


def _exp2(t: mx.array) -> mx.array:
    """``2**t`` for float32 ``t``, clipped to ``[-126, 126]`` (the normal float32 range)."""
    t = mx.clip(t, -126.0, 126.0)
    shifted = t + _ROUNDING_SHIFT  # its low mantissa bits hold round(t)
    fraction = t - (shifted - _ROUNDING_SHIFT)
    power = _EXP2_COEFFICIENTS[-1]
    for coefficient in _EXP2_COEFFICIENTS[-2::-1]:
        power = power * fraction + coefficient
    exponent = shifted.view(mx.int32) - (_SHIFT_BITS - _EXPONENT_BIAS)
    return power * mx.left_shift(exponent, 23).view(mx.float32)


@mx.custom_function
def _polynomial_sigmoid(x: mx.array) -> mx.array:
    return 1.0 / (1.0 + _exp2(x * -_LOG2E))


@_polynomial_sigmoid.vjp
def _polynomial_sigmoid_vjp(primals, cotangent, output):
    return cotangent * output * (1.0 - output)


@mx.custom_function
def _polynomial_tanh(x: mx.array) -> mx.array:
    # tanh(x) = 2 sigmoid(2x) - 1 loses relative precision near 0; there tanh(x) ~ x - x^3/3
    # + 2x^5/15 - 17x^7/315 + 62x^9/2835, accurate to 2e-8 (relative) for |x| < 0.25.
    square = x * x
    series = x * (
        1.0 + square * (-1 / 3 + square * (2 / 15 + square * (-17 / 315 + square * (62 / 2835))))
    )
    return mx.where(mx.abs(x) < 0.25, series, 2.0 / (1.0 + _exp2(x * (-2.0 * _LOG2E))) - 1.0)


@_polynomial_tanh.vjp
def _polynomial_tanh_vjp(primals, cotangent, output):
    return cotangent * (1.0 - output * output)


def sigmoid(x: mx.array) -> mx.array:
    """Logistic sigmoid of ``x`` (any shape): the polynomial form for large float32 arrays on
    the CPU (see the module docstring), ``mx.sigmoid`` otherwise."""
    return _polynomial_sigmoid(x) if uses_polynomial(x) else mx.sigmoid(x)


def tanh(x: mx.array) -> mx.array:
    """Hyperbolic tangent of ``x`` (any shape): the polynomial form for large float32 arrays on
    the CPU, ``mx.tanh`` otherwise."""
    return _polynomial_tanh(x) if uses_polynomial(x) else mx.tanh(x)
