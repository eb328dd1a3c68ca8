"""Hybrid sequence layers whose projections are masked by wirings, and models built from them.

``layers/``: every layer maps ``(B, T, D) -> (B, T, D)`` causally and follows the state contract
of :mod:`ncps_mlx.streaming`: ``__call__(x, cache=None) -> (y, cache)`` for whole sequences
(continuing from a cache), ``step(x_t, cache) -> (y_t, cache)`` for one token, and
``make_cache(batch, dtype)``. ``models/``: :class:`HybridModel` (the same contract) and the
:class:`HybridBuilder` that stacks layers from a pattern (layer types and named patterns, see
:func:`expand_layers`), :class:`ConvTransformerEncoder` and :class:`LiquidSeq2Seq`. A wiring
stretched to a width other than its own warns with :class:`WiringResampledWarning`.
"""

from .layers.conv import CausalConvBlock
from .layers.conv_attention import ConvAttentionFusion
from .layers.ffn import FeedForward
from .layers.gla import GatedLinearAttention
from .layers.kan import KANLayer
from .layers.liquid import LiquidLayer
from .layers.rwkv import RWKVBlock, RWKVCache
from .layers.self_attention import AttentionCache, CausalSelfAttention
from .layers.ssm import MambaBlock, MambaCache
from .layers.wired_linear import (
    QuantizedWiredLinear,
    WiredLinear,
    WiringResampledWarning,
    wiring_mask,
)
from .models.builder import HybridBuilder, LayerType, expand_layers
from .models.conv_transformer import ConvTransformerEncoder
from .models.hybrid_model import HybridModel
from .models.seq2seq import CrossAttention, DecoderBlock, LiquidSeq2Seq

__all__ = [
    "WiredLinear",
    "QuantizedWiredLinear",
    "wiring_mask",
    "WiringResampledWarning",
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
    "expand_layers",
    "LiquidSeq2Seq",
    "CrossAttention",
    "DecoderBlock",
]
