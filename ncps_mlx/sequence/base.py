"""The time loop around a cell, shared by every sequence module (``LTC``, ``CfC``, ...).

They share :class:`LiquidSequence`, which normalises the input layout (batch-first, time-major or
unbatched), timespans (scalar, per step and batch), an optional padding mask and mixed memory,
runs the state-independent part of the cell for all steps before the loop, and keeps the loop
body to the recurrent term.
"""

from __future__ import annotations

import inspect
import numbers

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .. import checks, kernels
from .._dtypes import astype
from .._validation import check_int, keyword_aliases
from ..cells import LSTMCell, Prepared
from ..cells.common import parameter_dtype
from ..wirings import Wiring
from . import files

__all__ = ["LiquidSequence"]


class LiquidSequence(nn.Module):
    """Runs a cell over a sequence; base class of :class:`~ncps_mlx.sequence.ltc.LTC`,
    :class:`~ncps_mlx.sequence.cfc.CfC` and the continuous-time baselines.

    The call follows the state contract of everything stateful (:mod:`ncps_mlx.streaming`):
    ``model(x, hx) -> (outputs, hx)``, with :meth:`make_cache` giving the initial state.

    Subclasses set ``rnn_cell`` (an object with ``prepare``/``step``), ``state_size``,
    optionally ``lstm`` (mixed memory) and implement :meth:`readout`.

    Call: ``model(x, hx=None, timespans=None, mask=None) -> (outputs, hx)``; ``x`` may also be
    passed as ``input=`` (ncps's name; with ``x`` too it is a TypeError).

    * ``x``: ``(B, T, F)`` if ``batch_first`` else ``(T, B, F)``; or unbatched ``(T, F)``.
    * ``hx``: initial state ``(B, N)`` (``(N,)`` unbatched), a tuple ``(h, c)`` with mixed
      memory; zeros if None.
    * ``timespans``: elapsed time of each step: a scalar, or shaped like ``x`` without its
      feature axis (``(B, T)``), optionally with a trailing 1 (``(B, T, 1)``). Finite, >= 0
      (> 0 for LTC). Default 1.
    * ``mask``: boolean, shaped like ``x`` without its feature axis (optionally with a
      trailing 1); False marks padding. Padded steps leave the state unchanged and repeat the
      previous output (before the first valid step: the output of ``hx``), so the final state
      and the ``return_sequences=False`` output are those of the last valid step. Inputs and
      timespans at padded steps are ignored (they may hold anything, NaN included).

    NaN or inf in ``x`` or ``hx`` propagate to the outputs unchecked unless the opt-in checks
    of :mod:`ncps_mlx.checks` are on; then they, and non-finite outputs or final state, raise
    :class:`~ncps_mlx.checks.NonFiniteError` naming the element. Timespans are always checked.

    Returns ``(outputs, hx)``: outputs ``(B, T, O)`` (or ``(B, O)`` if not
    ``return_sequences``; time-major and unbatched layouts follow ``x``), and the final state in
    the layout of ``hx``.

    The module computes in the dtype of its parameters (float32 unless :meth:`astype` changed
    it): ``x``, ``hx`` and ``timespans`` are cast to it, and outputs and state come back in it.

    Subclasses set two sizes: ``output_size`` (``O``, the features of the outputs: motor neurons,
    hidden units or ``proj_size``) and ``state_size`` (``N``, the features of ``hx``).
    """

    #: Smallest allowed timespan; LTC divides by it, so it overrides this with a strict bound.
    timespans_must_be_positive = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            files.register(cls)

    def __init__(
        self,
        input_size: int,
        return_sequences: bool,
        batch_first: bool,
        mixed_memory: bool,
        kernel: str | None = None,
    ):
        super().__init__()
        #: ``"auto"``, ``"fused"``, ``"reference"`` or None (the global default); see
        #: :mod:`ncps_mlx.kernels`.
        self.kernel = kernels.check_kernel(kernel)
        self.input_size = check_int(input_size, "input_size", minimum=1)
        self.return_sequences = bool(return_sequences)
        self.batch_first = bool(batch_first)
        self.use_mixed = bool(mixed_memory)
        #: Fuse each step's operations with ``mx.compile`` (same results, fewer kernel launches).
        self.compile_steps = True
        self._compiled_step = None

    def astype(self, dtype: mx.Dtype) -> LiquidSequence:
        """Compute in ``dtype`` (``mx.float32``, ``mx.float16`` or ``mx.bfloat16``) from now on:
        casts the parameters and constants in place (see :func:`ncps_mlx.quantization.astype`);
        inputs are then cast to ``dtype`` and outputs come back in it. Returns ``self``."""
        return astype(self, dtype)

    def _keep_config(self, arguments: dict) -> None:
        """Keep the constructor's arguments (its ``locals()``) as ``_config``, the JSON-ready
        keywords that rebuild the module (:func:`ncps_mlx.io.load_model`): one entry per
        parameter of the subclass's ``__init__``; a wiring passed as ``units`` is stored as
        None (model files keep the wiring's own config beside it)."""
        parameters = inspect.signature(type(self).__init__).parameters
        self._config = {name: _json_ready(arguments[name]) for name in parameters if name != "self"}

    def readout(self, outputs: mx.array) -> mx.array:
        """Map the stacked step outputs ``(T, B, ·)`` to the module's outputs."""
        return outputs

    def refresh_wiring(self) -> None:
        """Make the cell follow its wiring after the wiring's synapses changed (in place; see
        ``LTCCell.refresh_wiring`` / ``WiredCfCCell.refresh_wiring``)."""
        self.rnn_cell.refresh_wiring()

    def save_weights(self, file: str) -> None:
        """Save weights; a ``.safetensors`` file also stores the config and wiring (see
        :func:`ncps_mlx.io.save_model`), so :func:`ncps_mlx.io.load_model` rebuilds the model."""
        if str(file).endswith(".safetensors"):
            files.save_model(self, file)
        else:
            super().save_weights(file)

    # ------------------------------------------------------------------ the loop
    @keyword_aliases(input="x")
    def __call__(self, x, hx=None, timespans=None, mask=None):
        dtype = parameter_dtype(self)
        x = _as_float_array(x, "x", dtype)
        batched = x.ndim == 3
        if x.ndim not in (2, 3):
            raise ValueError(
                f"x must be (B, T, F), (T, B, F) or unbatched (T, F); got shape {x.shape}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"x has {x.shape[-1]} features but the module expects input_size={self.input_size}"
            )
        x = self._time_major(x, batched)  # (T, B, F)
        steps, batch = x.shape[0], x.shape[1]
        step_mask = self._mask(mask, steps, batch, batched)
        timespans = self._timespans(timespans, steps, batch, batched, step_mask, dtype)
        h, c = self._initial_state(hx, batch, batched, dtype)
        if step_mask is not None:
            # Padded steps are computed and discarded: keep their values finite for gradients.
            x = mx.where(step_mask, x, 0.0)
        if checks.is_enabled():
            self._check_finite_inputs(x, h, c, batched)

        prepared = self.rnn_cell.prepare(x)
        states = kernels.fused_states(self, prepared, h, timespans, step_mask)
        if states is not None:  # one kernel launch ran every step
            kept = states if self.return_sequences else states[-1:]
            outputs, h = self.rnn_cell.output_of_state(kept), states[-1]
        else:
            outputs, h, c = self._loop(x, prepared, h, c, timespans, step_mask)
        readout, state = self._restore_layout(self.readout(outputs), h, c, batched)
        return checks.validate(readout, "outputs"), checks.validate(state, "final hx")

    def _loop(self, x, prepared, h, c, timespans, step_mask):
        """The reference path: one (compiled) step per time step. Returns the outputs
        ``(T, B, ·)`` (``(1, B, ·)``, the last, unless ``return_sequences``) and the final
        ``h``, ``c``."""
        memory = self.lstm.prepare(x) if self.use_mixed else Prepared((), None)
        step = self._step_function()
        outputs, y = [], 0.0 if step_mask is None else self.rnn_cell.output_of_state(h)
        for t in range(x.shape[0]):
            y, h, c = step(
                tuple(a[t] for a in prepared.inputs),
                prepared.params,
                tuple(a[t] for a in memory.inputs),
                memory.params,
                h,
                c,
                timespans[t] if isinstance(timespans, mx.array) else timespans,
                None if step_mask is None else step_mask[t],
                y,
            )
            if self.return_sequences:
                outputs.append(y)
        return (mx.stack(outputs) if self.return_sequences else y[None]), h, c

    def _sequence_step(
        self, inputs_t, params, memory_t, memory_params, h, c, timespans, valid, y_prev
    ):
        """One step of the loop: mixed memory, the cell, and the padding mask.

        ``inputs_t``/``params`` are the cell's prepared inputs at this step and its constants
        (:class:`~ncps_mlx.cells.Prepared`), ``memory_t``/``memory_params`` the mixed-memory
        LSTM's (empty and None without it); ``h``, ``c`` ``(B, ·)`` the state (``c`` None
        without mixed memory); ``timespans`` a float or ``(B, 1)``; ``valid`` ``(B, 1)`` bool
        or None; ``y_prev`` the previous output, repeated at padded steps.
        """
        h_before, c_before = h, c
        if self.use_mixed:
            _, (h, c) = LSTMCell.step(memory_t, memory_params, (h, c))
        y, h = self.rnn_cell.step(inputs_t, params, h, timespans=timespans)
        if valid is not None:
            h = mx.where(valid, h, h_before)
            c = None if c is None else mx.where(valid, c, c_before)
            y = mx.where(valid, y, y_prev)
        return y, h, c

    def _step_function(self):
        """:meth:`_sequence_step`, compiled with ``mx.compile`` unless ``compile_steps`` is off
        or the step draws random numbers (backbone dropout in training mode)."""
        random = self.training and getattr(self.rnn_cell, "backbone_dropout", 0.0) > 0.0
        if not self.compile_steps or random:
            return self._sequence_step
        if self._compiled_step is None:
            self._compiled_step = mx.compile(self._sequence_step)
        return self._compiled_step

    # ------------------------------------------------------------------ layouts and checks
    def _time_major(self, x, batched):
        if not batched:
            return x[:, None, :]
        return x if not self.batch_first else x.transpose(1, 0, 2)

    def _check_finite_inputs(self, x, h, c, batched):
        """Raise :class:`~ncps_mlx.checks.NonFiniteError` if ``x`` (time-major, padding zeroed)
        or the initial state holds NaN/inf, naming the element in the caller's layout."""
        if not batched:
            x, h, c = x[:, 0], h[0], None if c is None else c[0]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        checks.check_finite(x, "x")
        checks.check_finite((h, c) if self.use_mixed else h, "hx")

    def _restore_layout(self, readout, h, c, batched):
        """``readout`` ``(T, B, O)`` (``(1, B, O)``: last step only) -> the input's layout."""
        if not batched:  # unbatched inputs ran as (T, 1, F)
            readout = readout[:, 0] if self.return_sequences else readout[0, 0]
            h, c = h[0], None if c is None else c[0]
        elif not self.return_sequences:
            readout = readout[0]
        elif self.batch_first:
            readout = readout.transpose(1, 0, 2)
        return readout, ((h, c) if self.use_mixed else h)

    def _leading_layout(self, array, name, steps, batch, batched):
        """Bring a per-step array (``x``'s layout without features) to ``(T, B, 1)``."""
        if array.ndim == (3 if batched else 2) and array.shape[-1] == 1:
            array = array[..., 0]
        expected = ((batch, steps) if self.batch_first else (steps, batch)) if batched else (steps,)
        if array.shape != expected:
            raise ValueError(
                f"{name} must be a scalar or have shape {expected} (optionally with a trailing 1) "
                f"to match x; got {array.shape}"
            )
        if not batched:
            array = array[:, None]
        elif self.batch_first:
            array = array.T
        return array[..., None]

    def _timespans(self, timespans, steps, batch, batched, step_mask, dtype):
        """Validate timespans (at valid steps) and bring them to a float or ``(T, B, 1)``."""
        if timespans is None:
            return 1.0
        spans = _as_float_array(timespans, "timespans", dtype)
        if spans.ndim:
            spans = self._leading_layout(spans, "timespans", steps, batch, batched)
            if step_mask is not None:
                spans = mx.where(step_mask, spans, 1.0)  # padded steps' timespans are ignored
        finite = bool(mx.all(mx.isfinite(spans)).item())
        smallest = float(mx.min(spans).item()) if spans.size else 1.0
        bound = "> 0" if self.timespans_must_be_positive else ">= 0"
        if not finite or smallest < 0 or (self.timespans_must_be_positive and smallest == 0):
            raise ValueError(
                f"timespans must be finite and {bound}; "
                f"got a value {smallest if finite else 'inf/nan'}"
            )
        return spans if spans.ndim else float(spans.item())

    def _mask(self, mask, steps, batch, batched):
        if mask is None:
            return None
        mask = mx.array(mask) if not isinstance(mask, mx.array) else mask
        if mask.dtype != mx.bool_:
            raise TypeError(f"mask must be boolean (True = valid step), got dtype {mask.dtype}")
        return self._leading_layout(mask, "mask", steps, batch, batched)

    def make_cache(self, batch: int, dtype: mx.Dtype | None = None):
        """The state a batch of sequences starts from, what ``hx=None`` stands for: zeros
        ``(batch, state_size)``, a tuple ``(h, c)`` of them with mixed memory, in ``dtype``
        (default: the dtype the module computes in). Hybrid layers and
        :class:`~ncps_mlx.hybrid.HybridModel` make their initial state the same way."""
        dtype = parameter_dtype(self) if dtype is None else dtype
        zeros = mx.zeros((batch, self.state_size), dtype)
        return (zeros, zeros) if self.use_mixed else zeros

    def _initial_state(self, hx, batch, batched, dtype):
        shape = (batch, self.state_size)
        if hx is None:
            zeros = self.make_cache(batch, dtype)
            return (zeros, None) if not self.use_mixed else zeros
        if self.use_mixed:
            if not (isinstance(hx, tuple | list) and len(hx) == 2):
                raise ValueError("with mixed_memory=True, hx must be a tuple (h, c)")
            states = [
                _as_float_array(s, name, dtype)
                for s, name in zip(hx, ("hx[0]", "hx[1]"), strict=True)
            ]
        else:
            states = [_as_float_array(hx, "hx", dtype)]
        expected = shape if batched else (self.state_size,)
        for state in states:
            if state.shape != expected:
                raise ValueError(f"hx must have shape {expected}, got {state.shape}")
        states = [state if batched else state[None] for state in states]
        return states[0], (states[1] if self.use_mixed else None)


def _json_ready(value):
    """A constructor argument as JSON: numbers as Python numbers, a wiring as None."""
    if isinstance(value, Wiring):
        return None
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _as_float_array(value, name: str, dtype=mx.float32) -> mx.array:
    """``value`` as an MLX array of the floating ``dtype`` (the dtype the module computes in)."""
    if isinstance(value, mx.array):
        array = value
    else:
        try:
            array = mx.array(np.asarray(value, dtype=np.float32))
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be an array of numbers, got {type(value).__name__}"
            ) from None
    return array if array.dtype == dtype else array.astype(dtype)
