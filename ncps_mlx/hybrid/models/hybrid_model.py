"""``HybridModel``: an input projection, pre-norm residual blocks of hybrid layers, a final norm.

:class:`~ncps_mlx.hybrid.HybridBuilder` makes these from a pattern of layer names.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ... import checks
from ..._dtypes import astype

__all__ = ["HybridModel", "make_cache"]


def make_cache(layer, batch: int, dtype=mx.float32):
    """``layer.make_cache(batch, dtype)``; float32 caches call ``make_cache(batch)``, so user
    layers registered without a ``dtype`` argument keep working."""
    return layer.make_cache(batch) if dtype == mx.float32 else layer.make_cache(batch, dtype)


class HybridModel(nn.Module):
    """Input projection, pre-norm residual blocks, final norm: ``(B, T, E) -> (B, T, H)``.

    Block ``i`` computes ``h = h + layer_i(RMSNorm(h))``. Layers listed in ``shared`` reuse one
    module (its parameters are counted once).

    Call: ``model(x, cache=None) -> (y, cache)``, the state contract of every stateful module
    of the library (see :mod:`ncps_mlx.streaming`):

    * ``x``: ``(B, T, E)`` floating point, cast to the dtype the model computes in (``E`` is
      the builder's ``embed_size``; ``B, T >= 1``).
    * ``cache``: the state to continue from, a list with one layer cache per block (see
      :meth:`make_cache`); None starts a new sequence (``model.make_cache(B)``).

    The input is checked here, at the model boundary: a wrong rank, width (``embed_size``) or
    dtype (integers, booleans, complex) raises ``ValueError``/``TypeError`` naming what the
    model was built with, before any layer runs.

    Returns ``(y, cache)``: outputs ``(B, T, H)`` and the cache after the ``T`` steps. Every
    layer is causal, so a sequence fed in chunks of any length, each continuing the previous
    chunk's cache, gives the outputs of one call on the whole sequence; :meth:`step` runs one
    token.
    """

    def __init__(
        self, embed_size: int, hidden_size: int, pattern: list[str], layers: list, shared_index
    ):
        super().__init__()
        self.pattern = list(pattern)
        self.embed_size, self.hidden_size = embed_size, hidden_size
        self.input_projection = nn.Linear(embed_size, hidden_size)
        self.norms = [nn.RMSNorm(hidden_size) for _ in pattern]
        self.layers = layers  # unique modules
        self._layer_of_block = list(shared_index)  # block i uses self.layers[index]
        self.final_norm = nn.RMSNorm(hidden_size)

    def _compute_dtype(self) -> mx.Dtype:
        """The dtype the model computes in: its input projection's (quantized: its scales')."""
        if "scales" in self.input_projection:
            return self.input_projection.scales.dtype
        return self.input_projection.weight.dtype

    def _check_input(self, x, name: str, layout: str) -> mx.array:
        """``x`` as an ``mx.array`` of ``layout``, or raise naming ``embed_size``."""
        if isinstance(x, np.ndarray):
            x = mx.array(x)
        if not isinstance(x, mx.array):
            raise TypeError(f"{name} must be an mx.array {layout}, got {type(x).__name__}")
        rank = layout.count(",") + 1
        expected = layout.replace("embed_size", f"embed_size={self.embed_size}")
        if x.ndim != rank:
            hint = "; for one token use step(x_t)" if rank == 3 and x.ndim == 2 else ""
            raise ValueError(f"{name} must be {rank}-D {expected}, got shape {x.shape}{hint}")
        if x.shape[-1] != self.embed_size:
            raise ValueError(
                f"{name} has {x.shape[-1]} features (last axis) but the model was built with "
                f"embed_size={self.embed_size}: expected {expected}, got shape {x.shape}"
            )
        if 0 in x.shape:
            raise ValueError(f"{name} must have B, T >= 1, got shape {x.shape}")
        if not mx.issubdtype(x.dtype, mx.floating):
            raise TypeError(
                f"{name} must be floating point (the model projects embed_size="
                f"{self.embed_size} features; it does not embed token ids), got {x.dtype}"
            )
        return x

    def make_cache(self, batch: int, dtype: mx.Dtype | None = None) -> list:
        """The state ``batch`` new sequences start from, what ``cache=None`` stands for.

        Args:
            batch (int): Number of sequences ``B``.
            dtype (mx.Dtype, optional): Dtype of the caches' arrays. Default: the dtype the
                model computes in.

        Returns:
            list: One cache per block (shared modules keep separate caches per use).
        """
        dtype = self._compute_dtype() if dtype is None else dtype
        return [make_cache(self.layers[i], batch, dtype) for i in self._layer_of_block]

    def astype(self, dtype) -> HybridModel:
        """Cast parameters and constants to ``dtype`` in place (see
        :func:`ncps_mlx.quantization.astype`); the model then computes in it."""
        return astype(self, dtype)

    def __call__(self, x: mx.array, cache: list | None = None) -> tuple[mx.array, list]:
        """``x`` ``(B, T, E)`` continuing ``cache`` -> ``(y (B, T, H), cache)`` (see the class
        docstring)."""
        x = self._check_input(x, "x", "(B, T, embed_size)")
        dtype = self._compute_dtype()
        if cache is None:
            cache = self.make_cache(x.shape[0], dtype)
        elif not isinstance(cache, (list, tuple)) or len(cache) != len(self._layer_of_block):
            raise ValueError(
                f"cache must be a list of {len(self._layer_of_block)} layer caches (one per "
                f"block, see make_cache), got {type(cache).__name__}"
                + (f" of {len(cache)}" if isinstance(cache, (list, tuple)) else "")
            )
        h = self.input_projection(checks.validate(x, "x").astype(dtype))
        new_cache = []
        for norm, index, layer_cache in zip(self.norms, self._layer_of_block, cache, strict=True):
            out, layer_cache = self.layers[index](norm(h), layer_cache)
            h = h + out
            new_cache.append(layer_cache)
        return checks.validate(self.final_norm(h), "outputs"), new_cache

    def step(self, x_t: mx.array, cache: list | None = None) -> tuple[mx.array, list]:
        """One token: ``x_t`` ``(B, E)`` continuing ``cache`` -> ``(y_t (B, H), cache)``."""
        x_t = self._check_input(x_t, "x_t", "(B, embed_size)")
        y, cache = self(x_t[:, None, :], cache)
        return y[:, 0], cache
