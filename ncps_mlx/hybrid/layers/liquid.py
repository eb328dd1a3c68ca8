"""Liquid layers for hybrid stacks: a CfC or LTC between two projections (``(B, T, D)``)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from ...sequence import LTC, CfC
from ...wirings import AutoNCP, Wiring
from .wired_linear import WiredLinear

__all__ = ["LiquidLayer"]

_KINDS = {"cfc": CfC, "ltc": LTC}


class LiquidLayer(nn.Module):
    r"""A liquid network as a sequence layer: ``y = W_out \, \text{rnn}(W_in x)``.

    The input projection ``W_in`` (``D -> F``) feeds a :class:`~ncps_mlx.CfC` or
    :class:`~ncps_mlx.LTC` (the attribute ``rnn``) whose neurons follow ``wiring`` (default
    ``AutoNCP(units, F)``); its motor neurons are projected back to ``D`` by ``W_out``. The
    recurrence is inherently sequential: the whole-sequence form computes the state-independent
    terms for all steps at once and loops over time; :meth:`step` advances one step.

    Call: ``layer(x, cache=None) -> (y, cache)``, the state contract of :mod:`ncps_mlx.streaming`:
    ``x`` and ``y`` are ``(B, T, D)``; the cache is the liquid network's state ``hx`` (``(B, N)``,
    or ``(h, c)`` with mixed memory; None: :meth:`make_cache`).

    Args:
        d_model (int): Model width ``D``.
        kind (str): ``"cfc"`` or ``"ltc"``.
        units (int): Neurons when no wiring is given (an ``AutoNCP`` with ``features`` motors);
            at least ``features + 3``.
        features (int, optional): Width ``F`` of the liquid network's input (and of its output,
            for the default wiring). Default: a built ``wiring``'s ``input_dim``, else
            ``min(D, 16)``.
        wiring (Wiring, optional): The liquid network's wiring; its input size must be
            ``features`` (an unbuilt wiring is built with ``features`` inputs, in place).
        projection_wiring (Wiring, optional): Structure of ``W_in`` and ``W_out`` (see
            :class:`~ncps_mlx.hybrid.WiredLinear`); dense by default.
        **cell_options: Passed to ``CfC``/``LTC`` (e.g. ``mode``, ``ode_unfolds``).
    """

    def __init__(
        self,
        d_model,
        kind="cfc",
        units=32,
        features=None,
        wiring=None,
        projection_wiring=None,
        **cell_options,
    ):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
        if wiring is not None and not isinstance(wiring, Wiring):
            raise TypeError(f"wiring must be a Wiring, got {type(wiring).__name__}")
        built = wiring is not None and wiring.is_built()
        defaulted = features is None and not built
        if features is None:
            features = wiring.input_dim if built else min(self.d_model, 16)
        features = check_int(features, "features", minimum=1)
        if built and wiring.input_dim != features:
            raise ValueError(
                f"features ({features}) must be the wiring's input_dim ({wiring.input_dim})"
            )
        if wiring is None:
            units = check_int(units, "units", minimum=1)
            if units < features + 3:
                default = ", min(d_model, 16) by default" if defaulted else ""
                raise ValueError(
                    f"units ({units}) must be >= features + 3 = {features + 3} for the default "
                    f"AutoNCP wiring (features = {features}{default})"
                )
            wiring = AutoNCP(units, features)
        self.kind = kind
        self.input_projection = WiredLinear(self.d_model, features, projection_wiring)
        self.rnn = _KINDS[kind](features, wiring, **cell_options)
        self.output_projection = WiredLinear(self.rnn.output_size, self.d_model, projection_wiring)

    def make_cache(self, batch: int, dtype=mx.float32):
        """The zero state of ``batch`` sequences: ``(batch, N)``, or ``(h, c)`` with mixed
        memory, in ``dtype``."""
        return self.rnn.make_cache(batch, dtype)

    def __call__(self, x: mx.array, cache=None):
        """``x`` ``(B, T, D)`` continuing ``cache`` -> ``(y (B, T, D), cache)``."""
        outputs, state = self.rnn(self.input_projection(x), hx=cache)
        return self.output_projection(outputs), state

    def step(self, x_t: mx.array, cache):
        """One step: ``x_t`` ``(B, D)`` -> ``(y_t (B, D), cache)``."""
        y, cache = self(x_t[:, None, :], cache)
        return y[:, 0], cache
