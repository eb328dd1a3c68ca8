"""A conv-transformer encoder with pooled embeddings.

:class:`~ncps_mlx.hybrid.ConvTransformerEncoder` stacks the conv–attention fusion layer
(:class:`~ncps_mlx.hybrid.ConvAttentionFusion`) with conv, attention
and feed-forward blocks (the ``"conv_transformer"`` pattern of
:class:`~ncps_mlx.hybrid.HybridBuilder`) and pools the sequence into one embedding per sequence.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..._validation import check_int
from .builder import HybridBuilder
from .layer_types import rename_identifiers

__all__ = ["ConvTransformerEncoder", "masked_pool"]

POOLINGS = ("mean", "attention")


def masked_pool(sequence: mx.array, mask: mx.array, scores: mx.array | None = None) -> mx.array:
    r"""Average the valid steps of ``sequence``: uniformly, or softmax-weighted by ``scores``.

    .. math::

        p = \frac{\sum_t m_t w_t h_t}{\sum_t m_t w_t}, \qquad
        w_t = 1 \ \text{(mean)} \quad\text{or}\quad
        w_t = \exp\big(s_t - \max_{u : m_u} s_u\big) \ \text{(attention)}

    Args:
        sequence (mx.array): ``(B, T, D)`` values :math:`h`.
        mask (mx.array): ``(B, T)`` bool, True at valid steps :math:`m`.
        scores (mx.array, optional): ``(B, T)`` attention scores :math:`s`; None for the mean.

    Returns:
        ``(B, D)``. Padded steps get weight exactly zero (they add nothing to the result and get
        zero gradient); a sequence without valid steps pools to zeros.
    """
    if scores is None:
        weights = mask.astype(sequence.dtype)
    else:
        shift = mx.stop_gradient(mx.where(mask, scores, -mx.inf).max(axis=1, keepdims=True))
        weights = mx.exp(mx.where(mask, scores - shift, -mx.inf))
    # the weights of a sequence sum to 0 (no valid step) or to at least 1 (the max's exp(0) = 1)
    total = mx.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    return (weights[..., None] * sequence).sum(axis=1) / total


class ConvTransformerEncoder(nn.Module):
    r"""Conv, attention and fusion blocks over a sequence, pooled into one embedding.

    The body is :meth:`HybridBuilder.build_pattern("conv_transformer", num_layers, ...)
    <ncps_mlx.hybrid.HybridBuilder.build_pattern>`: an input projection ``F -> D``, then
    ``num_layers`` pre-norm residual blocks ``h = h + layer(RMSNorm(h))`` cycling through
    ``conv`` (:class:`~ncps_mlx.hybrid.CausalConvBlock`), ``attention``
    (:class:`~ncps_mlx.hybrid.CausalSelfAttention`), ``conv_attention``
    (:class:`~ncps_mlx.hybrid.ConvAttentionFusion`) and ``ffn``
    (:class:`~ncps_mlx.hybrid.FeedForward`), and a final RMSNorm. :meth:`encode` returns the
    sequence ``(B, T, D)`` and its pooled embedding ``(B, D)`` (see
    :func:`~ncps_mlx.hybrid.models.conv_transformer.masked_pool`): the mean of the valid steps,
    or with     ``pooling="attention"`` their softmax-weighted average with learned scores
    :math:`s_t = w^\top h_t`.

    Every layer is causal, so the encoder is too: step ``t`` sees steps ``<= t`` only (the
    global branch attends to the prefix). This is what lets ``encoder.body(chunk, cache)`` /
    ``encoder.body.step`` (a :class:`~ncps_mlx.hybrid.HybridModel`) encode a stream chunk by
    chunk, and what makes right padding harmless: the valid steps of a padded batch have the
    outputs of the unpadded sequences, and their pooled embeddings are equal.

    Args:
        input_size (int): Features per step ``F``.
        d_model (int): Model width ``D``. Default: ``64``.
        num_layers (int): Residual blocks. Default: ``4`` (one cycle: conv, attention, fusion,
            ffn).
        kernel_size (int): Convolution width of the conv blocks and fusion branches. Default:
            ``4``.
        num_heads (int): Attention heads. Default: ``4``.
        head_dim (int, optional): Head width. Default: ``D // num_heads``.
        window_size (int, optional): Sliding attention window. Default: ``None`` (the whole
            prefix).
        ffn_hidden (int, optional): Hidden width of the feed-forward blocks. Default: ``4 D``.
        pooling (str): ``"mean"`` or ``"attention"``. Default: ``"mean"``.
        wiring (Wiring or dict, optional): Masks the blocks' projections, as the ``wiring``
            option of :meth:`HybridBuilder.build <ncps_mlx.hybrid.HybridBuilder.build>` (one
            Wiring for all, or a dict by layer type).
    """

    def __init__(
        self,
        input_size: int,
        d_model: int = 64,
        num_layers: int = 4,
        kernel_size: int = 4,
        num_heads: int = 4,
        head_dim: int | None = None,
        window_size: int | None = None,
        ffn_hidden: int | None = None,
        pooling: str = "mean",
        wiring=None,
    ):
        super().__init__()
        self.input_size = check_int(input_size, "input_size", minimum=1)
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.num_layers = check_int(num_layers, "num_layers", minimum=1)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        options = {  # builder option -> this constructor's argument (for error messages)
            "conv_kernel_size": ("kernel_size", kernel_size),
            "attention_num_heads": ("num_heads", num_heads),
            "attention_head_dim": ("head_dim", head_dim),
            "attention_window_size": ("window_size", window_size),
            "ffn_hidden_size": ("ffn_hidden", ffn_hidden),
        }
        try:
            self.body = HybridBuilder.build_pattern(
                "conv_transformer",
                self.num_layers,
                self.input_size,
                self.d_model,
                wiring=wiring,
                **{option: value for option, (_, value) in options.items()},
            )
        except (TypeError, ValueError) as error:  # in this constructor's argument names
            names = {option: name for option, (name, _) in options.items()}
            names.update(hidden_size="d_model", embed_size="input_size")
            raise type(error)(rename_identifiers(str(error), names)) from None
        if pooling == "attention":
            self.pool_score = nn.Linear(self.d_model, 1, bias=False)  # softmax ignores a bias

    def _check_inputs(self, x: mx.array, mask) -> mx.array:
        """The ``(B, T)`` bool mask (all True when ``mask`` is None), after checking shapes."""
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"x must be (B, T, input_size={self.input_size}), got shape {tuple(x.shape)}"
            )
        if not mx.issubdtype(x.dtype, mx.floating):
            raise TypeError(f"x must be floating point (input_size features), got {x.dtype}")
        if mask is None:
            return mx.ones(x.shape[:2], mx.bool_)
        mask = mx.array(mask)
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"mask must be (B, T) = {tuple(x.shape[:2])} like x, got shape {tuple(mask.shape)}"
            )
        return mask.astype(mx.bool_)

    def pool(self, sequence: mx.array, mask: mx.array) -> mx.array:
        """The pooled embedding ``(B, D)`` of an encoded ``sequence`` ``(B, T, D)``.

        Args:
            sequence (mx.array): Output of :meth:`encode` (``return_pooled=False``).
            mask (mx.array): ``(B, T)`` bool, True at valid steps.
        """
        scores = self.pool_score(sequence)[..., 0] if self.pooling == "attention" else None
        return masked_pool(sequence, mask, scores)

    def encode(self, x: mx.array, mask=None, return_pooled: bool = True):
        """Encode ``x`` ``(B, T, F)``.

        Args:
            x (mx.array): ``(B, T, input_size)`` inputs.
            mask (mx.array, optional): ``(B, T)`` bool, True at valid steps (pad at the end: the
                layers are causal, so valid steps never see the padding after them). Only the
                pooling reads it. Default: every step is valid.
            return_pooled (bool): Also return the pooled embedding. Default: ``True``.

        Returns:
            ``(sequence (B, T, D), pooled (B, D))``, or only ``sequence`` when
            ``return_pooled`` is False.

        Raises:
            ValueError: If ``x`` is not ``(B, T, input_size)`` or ``mask`` not ``(B, T)``.
            TypeError: If ``x`` is not floating point.
        """
        mask = self._check_inputs(x, mask)
        sequence, _ = self.body(x)
        return (sequence, self.pool(sequence, mask)) if return_pooled else sequence

    def __call__(self, x: mx.array, mask=None, return_pooled: bool = True):
        """Same as :meth:`encode`."""
        return self.encode(x, mask, return_pooled)

    def _extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, d_model={self.d_model}, "
            f"num_layers={self.num_layers}, pooling={self.pooling!r}"
        )
