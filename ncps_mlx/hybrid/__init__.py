"""Hybrid sequence layers whose projections are masked by wirings.

Every layer maps ``(B, T, D) -> (B, T, D)`` causally and offers ``__call__(x, cache=None) ->
(y, cache)`` for whole sequences (continuing from a cache), ``step(x_t, cache) -> (y_t, cache)``
for streaming, and ``make_cache(batch)``.
"""

from .attention import AttentionCache, CausalSelfAttention
from .builder import HybridBuilder, HybridModel, LayerType
from .conv import CausalConvBlock
from .conv_transformer import ConvAttentionFusion, ConvTransformerEncoder
from .ffn import FeedForward
from .gla import GatedLinearAttention
from .kan import KANLayer
from .liquid import LiquidLayer
from .rwkv import RWKVBlock, RWKVCache
from .seq2seq import CrossAttention, DecoderBlock, LiquidSeq2Seq
from .ssm import MambaBlock, MambaCache
from .wired_linear import QuantizedWiredLinear, WiredLinear, wiring_mask

__all__ = [
    "WiredLinear",
    "QuantizedWiredLinear",
    "wiring_mask",
    "CausalSelfAttention",
    "AttentionCache",
    "FeedForward",
    "CausalConvBlock",
    "ConvAttentionFusion",
    "ConvTransformerEncoder",
    "KANLayer",
    "LiquidLayer",
    "MambaBlock",
    "MambaCache",
    "GatedLinearAttention",
    "RWKVBlock",
    "RWKVCache",
    "HybridBuilder",
    "HybridModel",
    "LayerType",
    "LiquidSeq2Seq",
    "CrossAttention",
    "DecoderBlock",
]
