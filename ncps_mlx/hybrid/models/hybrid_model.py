"""``HybridModel``: an input projection, pre-norm residual blocks of hybrid layers, a final norm.

:class:`~ncps_mlx.hybrid.HybridBuilder` makes these from a pattern of layer names.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ... import checks
from ..._dtypes import astype

__all__ = ["HybridModel", "make_cache"]


def make_cache(layer, batch: int, dtype=mx.float32):
    """``layer.make_cache(batch, dtype)``; float32 caches call ``make_cache(batch)``, so user
    layers registered without a ``dtype`` argument keep working."""
    return layer.make_cache(batch) if dtype == mx.float32 else layer.make_cache(batch, dtype)


class HybridModel(nn.Module):
    """Input projection, pre-norm residual blocks, final norm: ``(B, T, E) -> (B, T, H)``.

    Block ``i`` computes ``h = h + layer_i(RMSNorm(h))``. ``__call__(x)`` runs whole
    sequences; :meth:`stream` continues from a cache (any chunk length) and :meth:`step` runs
    one token; both equal the whole-sequence call. Layers listed in ``shared`` reuse one
    module (its parameters are counted once).
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

    def make_cache(self, batch: int, dtype=mx.float32) -> list:
        """One cache per block (shared modules keep separate caches per use), in ``dtype``."""
        return [make_cache(self.layers[i], batch, dtype) for i in self._layer_of_block]

    def astype(self, dtype) -> HybridModel:
        """Cast parameters and constants to ``dtype`` in place (see
        :func:`ncps_mlx.quantization.astype`); the model then computes in it."""
        return astype(self, dtype)

    def stream(self, x: mx.array, cache: list | None = None):
        """``x`` ``(B, T, E)`` continuing ``cache`` -> ``(y (B, T, H), cache)``."""
        dtype = self.input_projection.weight.dtype
        if "scales" in self.input_projection:  # quantized: compute in the scales' dtype
            dtype = self.input_projection.scales.dtype
        cache = self.make_cache(x.shape[0], dtype) if cache is None else cache
        h = self.input_projection(checks.validate(x, "x").astype(dtype))
        new_cache = []
        for norm, index, layer_cache in zip(self.norms, self._layer_of_block, cache, strict=True):
            out, layer_cache = self.layers[index](norm(h), layer_cache)
            h = h + out
            new_cache.append(layer_cache)
        return checks.validate(self.final_norm(h), "outputs"), new_cache

    def __call__(self, x: mx.array) -> mx.array:
        return self.stream(x)[0]

    def step(self, x_t: mx.array, cache: list | None = None):
        """One token ``x_t`` ``(B, E)`` -> ``(y_t (B, H), cache)``."""
        y, cache = self.stream(x_t[:, None, :], cache)
        return y[:, 0], cache
