"""``StreamingRunner``: feed a long input to a liquid or hybrid model chunk by chunk.

A stream is cut into chunks of any length (1 step or thousands); the runner carries the model's
state from one chunk to the next, so the concatenated outputs equal those of one call on the
whole sequence, while memory depends on the chunk length and never on the stream's length.

Streamable models (checked once, when the runner is made):

* a :class:`~ncps_mlx.sequence.LiquidSequence` (:class:`~ncps_mlx.LTC`, :class:`~ncps_mlx.CfC`),
  batch-first: the state is its ``hx`` (a tuple ``(h, c)`` with mixed memory), and per-chunk
  ``timespans`` and padding ``mask`` pass through to it;
* anything with ``make_cache(batch)`` and either ``stream(x, cache) -> (y, cache)`` (a
  :class:`~ncps_mlx.hybrid.HybridModel`) or ``__call__(x, cache) -> (y, cache)`` (a single
  hybrid layer): the state is its cache.

Two rules keep memory constant:

* **Bounded caches.** Every cache of the library's layers has a fixed size (Mamba's conv and SSM
  state, GLA's and RWKV's matrix states and token shifts, the conv block's last inputs, the
  liquid cells' state) except attention's KV cache, which gains a position per step unless the
  layer has a sliding window. The runner refuses a model holding a layer with a
  ``window_size`` attribute that is None (the convention of
  :class:`~ncps_mlx.hybrid.CausalSelfAttention`; a user layer whose cache grows should follow
  it) instead of trimming its cache behind its back, which would make the streamed outputs
  differ from the model's own whole-sequence outputs.
* **Evaluated state.** MLX is lazy: a state carried without evaluation is a graph that grows
  with every chunk and keeps every past input alive. After each chunk the runner evaluates its
  outputs and the new state with one ``mx.eval``, so each chunk starts from concrete arrays.

The memory held is then the parameters, the state (attention: at most ``window_size``
positions) and buffers of the size of one chunk.
"""

from __future__ import annotations

import dataclasses

import mlx.core as mx
import numpy as np
from mlx.utils import tree_map

from ._validation import check_int
from .cells.common import parameter_dtype
from .hybrid.models.hybrid_model import make_cache
from .sequence import LiquidSequence

__all__ = ["StreamingRunner"]


class StreamingRunner:
    """Runs a model over a stream fed in chunks, carrying its state between chunks.

    ``runner.feed(chunk)`` (or ``runner(chunk)``) returns the chunk's outputs: the part of the
    whole-sequence outputs that the chunk's steps produce. Chunks are ``(B, T, F)`` with
    ``B = batch_size`` and any ``T >= 1``, or ``(T, F)`` (one sequence, when ``batch_size`` is
    1; its outputs come back without a batch axis). See the module docstring for the models
    accepted and how memory stays constant.

    Args:
        model: A batch-first :class:`~ncps_mlx.LTC`/:class:`~ncps_mlx.CfC`, a
            :class:`~ncps_mlx.hybrid.HybridModel` or a hybrid layer.
        batch_size (int): Number of sequences ``B`` streamed side by side. Default: ``1``.

    Raises:
        TypeError: If ``model`` is none of the above.
        ValueError: If a liquid model is time-major, or a layer of ``model`` has a cache
            without bound (attention without ``window_size``).
    """

    def __init__(self, model, batch_size: int = 1):
        self.model = model
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self._adapter = _adapter_for(model)
        _check_bounded(model)
        self.reset()

    @property
    def state(self):
        """The state after the steps fed so far (the liquid model's ``hx``, ``(B, N)`` or
        ``(h, c)``, or the hybrid model's cache, a list with one cache per block)."""
        return self._state

    @property
    def steps_seen(self) -> int:
        """Steps fed since the runner was made or last fully reset (padded steps included)."""
        return self._steps_seen

    @property
    def state_nbytes(self) -> int:
        """Bytes of the state's arrays (a window-bounded attention cache fills up to its window,
        then stays the same size)."""
        return sum(array.nbytes for array in _arrays(self._state))

    def feed(self, chunk, timespans=None, mask=None) -> mx.array:
        """Run the next ``T`` steps of the stream.

        Args:
            chunk (mx.array): ``(B, T, F)``, or ``(T, F)`` for one sequence.
            timespans (optional): Liquid models only: elapsed time of each step, a scalar or
                ``(B, T)`` / ``(B, T, 1)`` (``(T,)`` / ``(T, 1)`` for a ``(T, F)`` chunk).
            mask (optional): Liquid models only: boolean padding mask shaped like
                ``timespans`` (False: the step leaves the state unchanged).

        Returns:
            mx.array: The chunk's outputs, e.g. ``(B, T, O)`` (``(T, O)`` for a ``(T, F)``
            chunk; ``(B, O)``, the last step's, for a liquid model without
            ``return_sequences``).

        Raises:
            ValueError: If the chunk's shape does not fit the model or ``batch_size``, or
                ``timespans``/``mask`` are given to a model without them.
        """
        chunk = chunk if isinstance(chunk, mx.array) else mx.array(chunk)
        single = self._check_chunk(chunk)
        if single:
            chunk, timespans, mask = (_add_batch_axis(a) for a in (chunk, timespans, mask))
        outputs, self._state = self._adapter(chunk, self._state, timespans, mask)
        mx.eval(outputs, _arrays(self._state))
        self._steps_seen += chunk.shape[1]
        return outputs[0] if single else outputs

    __call__ = feed

    def reset(self, rows=None) -> None:
        """Start new streams: all of them, or only the batch ``rows`` given.

        Args:
            rows (int | sequence of int, optional): Batch rows whose state returns to the
                initial one while the others carry on; ``steps_seen`` is kept. Default: all rows
                (``steps_seen`` returns to 0).

        Raises:
            ValueError: If a row is out of range, or the state holds a cache whose size depends
                on the steps seen (attention's KV cache): such a cache can only be reset whole.
        """
        initial = self._adapter.initial_state(self.batch_size)
        if rows is None:
            self._state, self._steps_seen = initial, 0
            return
        rows = np.atleast_1d(np.asarray(rows))
        if rows.dtype.kind not in "iu" or not np.all((rows >= 0) & (rows < self.batch_size)):
            raise ValueError(f"rows must be indices in [0, {self.batch_size}), got {rows.tolist()}")
        selected = np.zeros(self.batch_size, dtype=bool)
        selected[rows] = True
        selected = mx.array(selected)

        def reset_rows(current, fresh):
            if current.shape != fresh.shape:
                raise ValueError(
                    f"cannot reset rows of a state array of shape {current.shape} that started as "
                    f"{fresh.shape} (an attention KV cache): call reset() without rows"
                )
            return mx.where(selected.reshape(-1, *(1,) * (current.ndim - 1)), fresh, current)

        self._state = _map_arrays(reset_rows, self._state, initial)
        mx.eval(_arrays(self._state))

    def _check_chunk(self, chunk: mx.array) -> bool:
        """Validate ``chunk``'s shape; True if it is one unbatched sequence ``(T, F)``."""
        if chunk.ndim not in (2, 3) or chunk.shape[-2] == 0:
            raise ValueError(
                f"chunk must be (B, T, F) or (T, F) with T >= 1 steps, got shape {chunk.shape}"
            )
        expected = self._adapter.input_size
        if expected is not None and chunk.shape[-1] != expected:
            raise ValueError(f"chunk has {chunk.shape[-1]} features but the model takes {expected}")
        batch = 1 if chunk.ndim == 2 else chunk.shape[0]
        if batch != self.batch_size:
            count = f"{batch} sequences" if chunk.ndim == 3 else "1 sequence (it is (T, F))"
            raise ValueError(
                f"the chunk holds {count}, but the runner streams batch_size={self.batch_size}; "
                "make a runner with the chunks' batch size"
            )
        return chunk.ndim == 2


class _LiquidAdapter:
    """A batch-first :class:`LiquidSequence`: state ``hx``; timespans and mask pass through."""

    def __init__(self, model: LiquidSequence):
        if not model.batch_first:
            raise ValueError(
                "StreamingRunner needs a batch-first liquid model (batch_first=True), "
                "chunks being (B, T, F)"
            )
        self.model = model
        self.input_size = model.input_size

    def initial_state(self, batch: int):
        zeros = mx.zeros((batch, self.model.state_size))
        return (zeros, zeros) if self.model.use_mixed else zeros

    def __call__(self, x, state, timespans, mask):
        return self.model(x, hx=state, timespans=timespans, mask=mask)


class _CacheAdapter:
    """A model with ``make_cache``: a HybridModel (``stream``) or a layer (``__call__``)."""

    def __init__(self, model):
        self.model = model
        self.forward = getattr(model, "stream", model)
        self.input_size = getattr(model, "d_model", None)  # a layer's width
        if self.input_size is None and hasattr(model, "input_projection"):  # a HybridModel
            self.input_size = model.input_projection.weight.shape[-1]

    def initial_state(self, batch: int):
        return make_cache(self.model, batch, parameter_dtype(self.model))

    def __call__(self, x, state, timespans, mask):
        for name, value in (("timespans", timespans), ("mask", mask)):
            if value is not None:
                raise ValueError(
                    f"{name} is only for liquid models (LTC, CfC); "
                    f"{type(self.model).__name__} has no {name}"
                )
        return self.forward(x, state)


def _adapter_for(model):
    if isinstance(model, LiquidSequence):
        return _LiquidAdapter(model)
    if callable(getattr(model, "make_cache", None)):
        return _CacheAdapter(model)
    raise TypeError(
        "model must be an LTC/CfC, a HybridModel or a hybrid layer (a module with "
        f"make_cache(batch)), got {type(model).__name__}"
    )


def _check_bounded(model) -> None:
    """Raise if a layer of ``model`` declares ``window_size`` and has none (its cache grows)."""
    for name, module in model.named_modules():
        if hasattr(module, "window_size") and module.window_size is None:
            where = f"layer '{name}'" if name else "model"
            raise ValueError(
                f"the {type(module).__name__} {where} has window_size=None: its KV cache grows "
                "by one position per step, so a stream's memory would grow without bound. "
                "Give it a sliding window: HybridBuilder.build(..., attention_window_size=W) "
                "or CausalSelfAttention(..., window_size=W)"
            )


def _add_batch_axis(value):
    """A per-step array of one sequence (``(T, ...)``) with a batch axis of 1; None and
    scalars as they are."""
    if value is None:
        return None
    if not isinstance(value, mx.array):
        value = np.asarray(value)
    return value[None] if value.ndim else value


def _map_arrays(fn, tree, *rest):
    """``fn(array, *matching arrays of rest)`` for every array of a state tree.

    Trees nest lists, tuples (NamedTuples included), dicts and dataclasses (such as
    :class:`~ncps_mlx.hybrid.AttentionCache`); other leaves (None, ints) are kept.
    """

    def leaf(node, *others):
        if isinstance(node, mx.array):
            return fn(node, *others)
        if dataclasses.is_dataclass(node):
            fields = {
                field.name: _map_arrays(
                    fn, getattr(node, field.name), *(getattr(o, field.name) for o in others)
                )
                for field in dataclasses.fields(node)
            }
            return dataclasses.replace(node, **fields)
        return node

    return tree_map(leaf, tree, *rest, is_leaf=dataclasses.is_dataclass)


def _arrays(tree) -> list[mx.array]:
    """The arrays of a state tree (see :func:`_map_arrays`)."""
    found = []
    _map_arrays(found.append, tree)
    return found
