"""The state contract, and ``StreamingRunner``: feed a long input to a model chunk by chunk.

**The state contract.** Everything in the library that carries state over time, the sequence
modules (:class:`~ncps_mlx.LTC`, :class:`~ncps_mlx.CfC`, any
:class:`~ncps_mlx.sequence.LiquidSequence`), the hybrid layers
(:class:`~ncps_mlx.hybrid.MambaBlock`, :class:`~ncps_mlx.hybrid.LiquidLayer`, ...) and
:class:`~ncps_mlx.hybrid.HybridModel`, has one contract shape:

* ``model(x, state=None, **extras) -> (y, state)``: ``x`` ``(B, T, F)``, the second positional
  argument the state to continue from (None: a new sequence, the state of ``make_cache``); it
  returns the outputs ``y`` of the ``T`` steps and the state after them.
* ``model.make_cache(batch, dtype=...)``: the state ``batch`` new sequences start from.

The state's keyword keeps the name users already write: ``hx`` for the ncps-compatible sequence
modules (whose extras are per-step ``timespans`` and a padding ``mask``; they also take
time-major and unbatched inputs), ``cache`` for hybrid layers and models (as in mlx-lm). A state
is a tree of arrays: an array, a tuple ``(h, c)``, a NamedTuple or dataclass
(:class:`~ncps_mlx.hybrid.MambaCache`, :class:`~ncps_mlx.hybrid.AttentionCache`), a list with
one cache per block, or None (stateless layers such as :class:`~ncps_mlx.hybrid.FeedForward`).
The modules are causal, so a sequence cut anywhere into chunks, each continuing the previous
chunk's state, gives the outputs (per step: with ``return_sequences=True`` for the sequence
modules) and the final state of one call on the whole sequence::

    y, state = model(x)                            # the whole sequence
    y1, s1 = model(x[:, :k], model.make_cache(B))  # or two chunks (the same as model(x[:, :k]))
    y2, s2 = model(x[:, k:], s1)                   # concat(y1, y2) == y and s2 == state

**Streaming.** :class:`StreamingRunner` relies on this contract alone. It feeds the chunks of a
stream as they come, of any length (1 step or thousands), and carries the state from one chunk
to the next, so the concatenated outputs equal those of one call on the whole sequence, while
memory depends on the chunk length and never on the stream's length. It streams any module with
``make_cache`` that follows the contract batch-first (a liquid model needs
``batch_first=True``); per-chunk ``timespans`` and ``mask`` pass through to a model that takes
them.

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
import inspect

import mlx.core as mx
import numpy as np
from mlx.utils import tree_map

from ._validation import check_int
from .cells.common import parameter_dtype
from .hybrid.models.hybrid_model import make_cache

__all__ = ["StreamingRunner"]

#: Per-chunk keywords that pass through to the models that take them (the liquid models).
_EXTRAS = ("timespans", "mask")


class StreamingRunner:
    """Runs a model over a stream fed in chunks, carrying its state between chunks.

    ``runner.feed(chunk)`` (or ``runner(chunk)``) returns the chunk's outputs: the part of the
    whole-sequence outputs that the chunk's steps produce. Chunks are ``(B, T, F)`` with
    ``B = batch_size`` and any ``T >= 1``, or ``(T, F)`` (one sequence, when ``batch_size`` is
    1; its outputs come back without a batch axis). See the module docstring for the models
    accepted and how memory stays constant.

    Args:
        model: A module following the state contract (see the module docstring): a
            batch-first :class:`~ncps_mlx.LTC`/:class:`~ncps_mlx.CfC`, a
            :class:`~ncps_mlx.hybrid.HybridModel` or a hybrid layer.
        batch_size (int): Number of sequences ``B`` streamed side by side. Default: ``1``.

    Raises:
        TypeError: If ``model`` has no ``make_cache``.
        ValueError: If ``model`` is time-major (``batch_first=False``), or a layer of ``model``
            has a cache without bound (attention without ``window_size``).
    """

    def __init__(self, model, batch_size: int = 1):
        _check_streamable(model)
        _check_bounded(model)
        self.model = model
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self._input_size = _input_size(model)
        self._extras_taken = _keywords_taken(model, _EXTRAS)
        self.reset()

    @property
    def state(self):
        """The state after the steps fed so far, as the model returns it (a liquid model's
        ``hx``, ``(B, N)`` or ``(h, c)``; a hybrid model's cache, a list with one cache per
        block)."""
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
        extras = self._extras(timespans=timespans, mask=mask)
        if single:
            chunk = _add_batch_axis(chunk)
            extras = {name: _add_batch_axis(value) for name, value in extras.items()}
        outputs, self._state = self.model(chunk, self._state, **extras)
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
        initial = make_cache(self.model, self.batch_size, parameter_dtype(self.model))
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
        expected = self._input_size
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

    def _extras(self, **given) -> dict:
        """The per-chunk keywords given (those not None), after checking the model takes them."""
        extras = {name: value for name, value in given.items() if value is not None}
        for name in extras:
            if name not in self._extras_taken:
                raise ValueError(
                    f"{name} is only for liquid models (LTC, CfC); "
                    f"{type(self.model).__name__} has no {name}"
                )
        return extras


def _check_streamable(model) -> None:
    """Raise if ``model`` has no ``make_cache`` or is time-major."""
    if not callable(getattr(model, "make_cache", None)):
        raise TypeError(
            "model must follow the state contract of ncps_mlx.streaming: an LTC/CfC, a "
            "HybridModel or a hybrid layer (a module with make_cache(batch)), "
            f"got {type(model).__name__}"
        )
    if not getattr(model, "batch_first", True):
        raise ValueError(
            "StreamingRunner needs a batch-first model (batch_first=True), chunks being (B, T, F)"
        )


def _input_size(model) -> int | None:
    """Features per step ``model`` takes, if it says: its ``input_size`` (liquid models),
    ``embed_size`` (:class:`~ncps_mlx.hybrid.HybridModel`) or ``d_model`` (hybrid layers)."""
    for name in ("input_size", "embed_size", "d_model"):
        size = getattr(model, name, None)
        if isinstance(size, int):
            return size
    return None


def _keywords_taken(model, names) -> frozenset[str]:
    """The ``names`` that ``model(...)`` takes as keywords (all of them with ``**kwargs``)."""
    parameters = inspect.signature(model).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return frozenset(names)
    return frozenset(name for name in names if name in parameters)


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
