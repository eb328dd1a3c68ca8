r"""An encoder-decoder: a liquid (CfC/LTC) encoder whose outputs a causal transformer decoder
cross-attends to, with teacher-forced training and cached autoregressive generation.

Encoder: the source (``(B, S, F)`` features, or ``(B, S)`` token ids with ``source_vocab_size``)
runs through a :class:`~ncps_mlx.sequence.CfC` or :class:`~ncps_mlx.sequence.LTC` (any wiring); with
``bidirectional=True`` a second liquid network reads each sequence backwards and the two
outputs are concatenated per step. A linear layer maps them to the decoder width: the memory
``M`` ``(B, S, D)``.

Decoder: ``num_layers`` pre-norm blocks, each

.. math::

    h \leftarrow h + \mathrm{SelfAttn}(\mathrm{norm}(h)), \quad
    h \leftarrow h + \mathrm{CrossAttn}(\mathrm{norm}(h), M), \quad
    h \leftarrow h + \mathrm{FFN}(\mathrm{norm}(h))

with causal, rotary self-attention (:class:`~ncps_mlx.hybrid.CausalSelfAttention`, whose
KV cache makes generation cost one position per token), cross-attention over the valid source
steps, and :class:`~ncps_mlx.hybrid.FeedForward`; then a final norm and the vocabulary
projection.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from ..._dtypes import astype
from ..._validation import check_int
from ...sequence import LTC, CfC
from ...wirings import Wiring
from ..layers.ffn import FeedForward
from ..layers.self_attention import (
    AttentionCache,
    CausalSelfAttention,
    head_dimension,
    merge_heads,
    split_heads,
)
from ..layers.wired_linear import WiredLinear

__all__ = ["CrossAttention", "DecoderBlock", "LiquidSeq2Seq"]

_ENCODERS = {"cfc": CfC, "ltc": LTC}


class CrossAttention(nn.Module):
    r"""Multi-head attention from decoder positions to an encoder memory.

    :math:`o_t = W_o [\operatorname{softmax}_s(q_t^\top k_s / \sqrt{d_h}) v_s]_{h=1..H}` with
    :math:`q = W_q x`, :math:`k = W_k m`, :math:`v = W_v m`, over the source steps :math:`s`
    that ``memory_mask`` marks valid. The keys and values of a memory are computed once
    (:meth:`memory_heads`) and reused for every decoding step.

    Args:
        d_model (int): Width ``D`` of queries and memory.
        num_heads (int): Heads ``H``.
        head_dim (int, optional): Head width ``d_h``. Default: ``D // H``.
        wiring (Wiring, optional): Structure of the four projections.
    """

    def __init__(self, d_model: int, num_heads: int = 4, head_dim=None, wiring=None):
        super().__init__()
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.num_heads = check_int(num_heads, "num_heads", minimum=1)
        self.head_dim = head_dimension(self.d_model, self.num_heads, head_dim)
        inner = self.num_heads * self.head_dim
        self.q_proj = WiredLinear(self.d_model, inner, wiring)
        self.k_proj = WiredLinear(self.d_model, inner, wiring)
        self.v_proj = WiredLinear(self.d_model, inner, wiring)
        self.out_proj = WiredLinear(inner, self.d_model, wiring)

    def memory_heads(self, memory: mx.array) -> tuple[mx.array, mx.array]:
        """Keys and values ``(B, H, S, d_h)`` of a memory ``(B, S, D)``."""
        return (
            split_heads(self.k_proj(memory), self.num_heads),
            split_heads(self.v_proj(memory), self.num_heads),
        )

    def __call__(self, x: mx.array, keys: mx.array, values: mx.array, memory_mask=None):
        """``x`` ``(B, T, D)`` attends to ``keys``/``values`` ``(B, H, S, d_h)``; ``memory_mask``
        ``(B, S)`` bool (True: valid) or None. Returns ``(B, T, D)``."""
        queries = split_heads(self.q_proj(x), self.num_heads)
        mask = None if memory_mask is None else memory_mask[:, None, None, :]
        attended = mx.fast.scaled_dot_product_attention(
            queries, keys, values, scale=self.head_dim**-0.5, mask=mask
        )
        return self.out_proj(merge_heads(attended))


class DecoderBlock(nn.Module):
    """One pre-norm decoder block: causal self-attention, cross-attention, feed-forward.

    Args:
        d_model (int): Width ``D``.
        num_heads (int): Heads of both attentions.
        ff_size (int): Hidden width of the feed-forward layer.
        wiring (Wiring, optional): Structure of every projection in the block.
    """

    def __init__(self, d_model: int, num_heads: int, ff_size: int, wiring=None):
        super().__init__()
        self.self_norm = nn.RMSNorm(d_model)
        self.self_attention = CausalSelfAttention(d_model, num_heads, wiring=wiring)
        self.cross_norm = nn.RMSNorm(d_model)
        self.cross_attention = CrossAttention(d_model, num_heads, wiring=wiring)
        self.ff_norm = nn.RMSNorm(d_model)
        self.ff = FeedForward(d_model, ff_size, wiring)

    def __call__(self, h, memory_heads, memory_mask, cache: AttentionCache | None = None):
        """``h`` ``(B, T, D)`` -> ``(h (B, T, D), self-attention cache)``."""
        attended, cache = self.self_attention(self.self_norm(h), cache)
        h = h + attended
        h = h + self.cross_attention(self.cross_norm(h), *memory_heads, memory_mask)
        return h + self.ff(self.ff_norm(h))[0], cache


def _prefix_lengths(mask: mx.array) -> mx.array:
    """Valid steps per row of a ``(B, S)`` prefix mask (valid steps first); checks the form."""
    lengths = mask.astype(mx.int32).sum(axis=1)
    if not mx.array_equal(mask, mx.arange(mask.shape[1])[None, :] < lengths[:, None]).item():
        raise ValueError(
            "source_mask must mark a prefix of each sequence (valid steps first) for a "
            "bidirectional encoder"
        )
    return lengths


def _reverse_prefixes(x: mx.array, lengths: mx.array | None) -> mx.array:
    """Reverse each row's first ``lengths[b]`` steps (all steps if None) along axis 1; padded
    steps stay where they are. Applying it twice gives ``x`` back."""
    steps = x.shape[1]
    if lengths is None:
        return x[:, ::-1]
    t = mx.arange(steps)[None, :]
    index = mx.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    index = index.reshape(*index.shape, *([1] * (x.ndim - 2)))
    return mx.take_along_axis(x, index, axis=1)


def _filter_logits(logits: mx.array, top_k, top_p) -> mx.array:
    """Set the logits outside the top-k tokens and outside the nucleus of mass ``top_p`` (the
    smallest set of most likely tokens whose probability reaches it) to -inf."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = mx.sort(logits, axis=-1)[..., -top_k][..., None]
        logits = mx.where(logits < kth, -mx.inf, logits)
    if top_p is not None and top_p < 1.0:
        order = mx.argsort(-logits, axis=-1)
        sorted_probs = mx.take_along_axis(mx.softmax(logits, axis=-1), order, axis=-1)
        mass_before = mx.cumsum(sorted_probs, axis=-1) - sorted_probs
        drop_sorted = mass_before >= top_p  # the most likely token is always kept
        drop = mx.put_along_axis(mx.zeros(logits.shape, mx.bool_), order, drop_sorted, axis=-1)
        logits = mx.where(drop, -mx.inf, logits)
    return logits


class LiquidSeq2Seq(nn.Module):
    """A liquid encoder with a causal transformer decoder (see the module docstring).

    Args:
        source_size (int): Source features ``F`` (with ``source_vocab_size``: the width of the
            source token embedding).
        target_vocab_size (int): Target vocabulary ``V``.
        d_model (int): Decoder width ``D``. Default ``64``.
        num_layers (int): Decoder blocks. Default ``2``.
        num_heads (int): Heads of the decoder's attentions. Default ``4``.
        ff_size (int, optional): Hidden width of the feed-forward layers. Default ``4 * D``.
        encoder (str): ``"cfc"`` or ``"ltc"``.
        encoder_units (int | Wiring): Neurons of the liquid encoder, or its wiring. Default
            ``64``.
        bidirectional (bool): Add a second liquid encoder that reads each sequence backwards.
        source_vocab_size (int, optional): Embed ``(B, S)`` source token ids instead of taking
            ``(B, S, F)`` features.
        wiring (Wiring, optional): Structure of every decoder projection (see
            :class:`~ncps_mlx.hybrid.WiredLinear`).
        tie_embeddings (bool): Use the target embedding's transpose as the output projection.
        **encoder_options: Passed to the :class:`~ncps_mlx.CfC` / :class:`~ncps_mlx.LTC`
            constructor (e.g. ``mode``, ``mixed_memory``, ``ode_unfolds``).

    Call: ``model(source, target, source_mask=None, timespans=None)`` returns logits
    ``(B, T, V)`` for the decoder inputs ``target`` ``(B, T)`` (teacher forcing: ``target``
    starts with the start token, and position ``t`` predicts token ``t + 1``).
    """

    def __init__(
        self,
        source_size: int,
        target_vocab_size: int,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        ff_size: int | None = None,
        encoder: str = "cfc",
        encoder_units: int | Wiring = 64,
        bidirectional: bool = False,
        source_vocab_size: int | None = None,
        wiring: Wiring | None = None,
        tie_embeddings: bool = False,
        **encoder_options,
    ):
        super().__init__()
        self.source_size = check_int(source_size, "source_size", minimum=1)
        self.target_vocab_size = check_int(target_vocab_size, "target_vocab_size", minimum=2)
        self.d_model = check_int(d_model, "d_model", minimum=1)
        check_int(num_layers, "num_layers", minimum=1)
        if encoder not in _ENCODERS:
            raise ValueError(f"encoder must be one of {sorted(_ENCODERS)}, got {encoder!r}")
        if not isinstance(encoder_units, (int, Wiring)) or isinstance(encoder_units, bool):
            raise TypeError(f"encoder_units must be an int or a Wiring, got {encoder_units!r}")
        for fixed in ("return_sequences", "batch_first"):
            if fixed in encoder_options:
                raise ValueError(f"{fixed} is fixed by LiquidSeq2Seq; do not pass it")
        if source_vocab_size is not None:
            self.source_embedding = nn.Embedding(
                check_int(source_vocab_size, "source_vocab_size", minimum=1), self.source_size
            )
        self.bidirectional = bool(bidirectional)
        self.encoder = _ENCODERS[encoder](self.source_size, encoder_units, **encoder_options)
        if self.bidirectional:
            units = encoder_units
            if isinstance(units, Wiring):  # an identical, separately built circuit
                units = Wiring.from_config(units.get_config())
            self.backward_encoder = _ENCODERS[encoder](self.source_size, units, **encoder_options)
        encoded = self.encoder.output_size * (2 if self.bidirectional else 1)
        self.memory_projection = nn.Linear(encoded, self.d_model)
        self.target_embedding = nn.Embedding(self.target_vocab_size, self.d_model)
        ff_size = 4 * self.d_model if ff_size is None else check_int(ff_size, "ff_size", 1)
        self.blocks = [
            DecoderBlock(self.d_model, num_heads, ff_size, wiring) for _ in range(num_layers)
        ]
        self.final_norm = nn.RMSNorm(self.d_model)
        self.tie_embeddings = bool(tie_embeddings)
        if not self.tie_embeddings:
            self.output_projection = nn.Linear(self.d_model, self.target_vocab_size)

    def astype(self, dtype) -> LiquidSeq2Seq:
        """Cast parameters and constants to ``dtype`` in place (see
        :func:`ncps_mlx.quantization.astype`); the model then computes in it."""
        return astype(self, dtype)

    # ------------------------------------------------------------------ encoder
    def _source_features(self, source) -> mx.array:
        source = mx.array(source) if not isinstance(source, mx.array) else source
        if "source_embedding" in self:
            if source.ndim != 2 or not mx.issubdtype(source.dtype, mx.integer):
                raise ValueError(
                    f"source must be (B, S) token ids, got shape {source.shape}, {source.dtype}"
                )
            return self.source_embedding(source)
        if source.ndim != 3 or source.shape[-1] != self.source_size:
            raise ValueError(
                f"source must be (B, S, {self.source_size}) features, got shape {source.shape}"
            )
        return source

    def encode(self, source, source_mask=None, timespans=None) -> mx.array:
        """The memory ``(B, S, D)`` of a source (features or token ids).

        Args:
            source: ``(B, S, F)`` features, or ``(B, S)`` token ids with ``source_vocab_size``.
            source_mask: ``(B, S)`` bool, True at valid steps (a prefix of each row when
                bidirectional). Default: all valid.
            timespans: Elapsed time per step, as for :class:`~ncps_mlx.sequence.CfC` (a scalar or
                ``(B, S)``). The backward encoder gets the same spans in reverse, shifted so
                each step's span is the gap to the step after it.
        """
        x = self._source_features(source)
        if source_mask is not None:
            source_mask = mx.array(source_mask)
            if source_mask.shape != x.shape[:2] or source_mask.dtype != mx.bool_:
                raise ValueError(
                    f"source_mask must be a bool array of shape {x.shape[:2]}, got "
                    f"{source_mask.shape} {source_mask.dtype}"
                )
        outputs, _ = self.encoder(x, timespans=timespans, mask=source_mask)
        if self.bidirectional:
            lengths = None if source_mask is None else _prefix_lengths(source_mask)
            backward_spans = timespans
            if timespans is not None and mx.array(timespans).ndim >= 2:
                spans = mx.array(timespans).reshape(x.shape[0], x.shape[1])
                # Reversed, step k's gap is the forward gap of the step after it.
                after = mx.minimum(mx.arange(1, x.shape[1] + 1), x.shape[1] - 1)
                following = spans[:, after]
                if lengths is not None:  # the last valid step has no successor
                    last = mx.take_along_axis(spans, (lengths - 1)[:, None], axis=1)
                    valid_end = mx.arange(x.shape[1])[None, :] == (lengths - 1)[:, None]
                    following = mx.where(valid_end, last, following)
                backward_spans = _reverse_prefixes(following, lengths)
            backward, _ = self.backward_encoder(
                _reverse_prefixes(x, lengths), timespans=backward_spans, mask=source_mask
            )
            outputs = mx.concatenate([outputs, _reverse_prefixes(backward, lengths)], axis=-1)
        return self.memory_projection(outputs)

    # ------------------------------------------------------------------ decoder
    def memory_heads(self, memory: mx.array) -> list[tuple[mx.array, mx.array]]:
        """Each block's cross-attention keys and values of ``memory`` (computed once)."""
        return [block.cross_attention.memory_heads(memory) for block in self.blocks]

    def decode(self, target, memory_heads, source_mask=None, caches=None):
        """Logits ``(B, T, V)`` of decoder inputs ``target`` ``(B, T)`` and the new caches.

        Args:
            target: ``(B, T)`` token ids; with ``caches`` they continue the cached positions.
            memory_heads: From :meth:`memory_heads`.
            source_mask: ``(B, S)`` bool or None.
            caches: One self-attention cache per block, or None (start of the sequence).
        """
        target = mx.array(target) if not isinstance(target, mx.array) else target
        if target.ndim != 2 or not mx.issubdtype(target.dtype, mx.integer):
            raise ValueError(f"target must be (B, T) token ids, got shape {target.shape}")
        h = self.target_embedding(target)
        caches = [None] * len(self.blocks) if caches is None else caches
        new_caches = []
        for block, heads, cache in zip(self.blocks, memory_heads, caches, strict=True):
            h, cache = block(h, heads, source_mask, cache)
            new_caches.append(cache)
        h = self.final_norm(h)
        if self.tie_embeddings:
            return self.target_embedding.as_linear(h), new_caches
        return self.output_projection(h), new_caches

    def __call__(self, source, target, source_mask=None, timespans=None) -> mx.array:
        memory = self.encode(source, source_mask, timespans)
        return self.decode(target, self.memory_heads(memory), source_mask)[0]

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        source,
        start_token: int,
        end_token: int | None = None,
        max_length: int = 32,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        num_beams: int = 1,
        length_penalty: float = 1.0,
        source_mask=None,
        timespans=None,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> mx.array:
        """Decode target tokens autoregressively.

        ``temperature == 0`` (the default) picks the most likely token (greedy); ``> 0``
        samples from ``softmax(logits / temperature)`` restricted to the ``top_k`` most likely
        tokens and to the nucleus of probability mass ``top_p``. ``num_beams > 1`` runs beam
        search instead (deterministic; scores are summed log-probabilities divided by
        ``length ** length_penalty`` when comparing finished hypotheses).

        Args:
            source: As for :meth:`encode`.
            start_token: The first decoder input.
            end_token: A sequence stops after producing it; later positions repeat it. None:
                always ``max_length`` tokens.
            max_length: Most tokens to generate (the start token not counted).
            temperature, top_k, top_p: Sampling settings (see above).
            num_beams: Beams of beam search (1: greedy or sampling).
            length_penalty: Exponent of the length normalisation of beam scores.
            source_mask, timespans: As for :meth:`encode`.
            seed: Seed of the sampling (same seed, same tokens). None: MLX's global generator.
            use_cache: Decode one position per step from the self-attention KV caches
                (False: re-run the decoder on the whole prefix each step; same tokens,
                slower).

        Returns:
            ``(B, L)`` int32 tokens, ``L <= max_length`` (shorter if every sequence ended).
        """
        max_length = check_int(max_length, "max_length", minimum=1)
        num_beams = check_int(num_beams, "num_beams", minimum=1)
        for name, token in (("start_token", start_token), ("end_token", end_token)):
            if token is not None and not 0 <= int(token) < self.target_vocab_size:
                raise ValueError(f"{name} must be in [0, {self.target_vocab_size}), got {token!r}")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be finite and >= 0, got {temperature!r}")
        if top_k is not None:
            top_k = check_int(top_k, "top_k", minimum=1)
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        if num_beams > 1 and temperature > 0:
            raise ValueError("beam search is deterministic: use temperature=0 with num_beams > 1")
        memory = self.encode(source, source_mask, timespans)
        if num_beams > 1:
            return self._beam_search(
                memory,
                source_mask,
                start_token,
                end_token,
                max_length,
                num_beams,
                length_penalty,
                use_cache,
            )
        key = None if seed is None else mx.random.key(seed)
        decoder = _IncrementalDecoder(self, memory, source_mask, start_token, use_cache)
        finished = mx.zeros((memory.shape[0],), mx.bool_)
        tokens = []
        for _ in range(max_length):
            logits = decoder.next_logits()
            if temperature == 0:
                token = mx.argmax(logits, axis=-1)
            else:
                logits = _filter_logits(logits / temperature, top_k, top_p)
                if key is not None:
                    key, step_key = mx.random.split(key)
                token = mx.random.categorical(logits, key=None if key is None else step_key)
            token = token.astype(mx.int32)
            if end_token is not None:
                token = mx.where(finished, end_token, token)
                finished = finished | (token == end_token)
            tokens.append(token)
            decoder.append(token)
            if end_token is not None and finished.all().item():
                break
        return mx.stack(tokens, axis=1)

    def _beam_search(
        self, memory, source_mask, start_token, end_token, max_length, beams, alpha, use_cache
    ):
        batch = memory.shape[0]
        rows = mx.repeat(mx.arange(batch), beams)  # beam-major rows: b * beams + k
        mask = None if source_mask is None else mx.array(source_mask)[rows]
        decoder = _IncrementalDecoder(self, memory[rows], mask, start_token, use_cache)
        vocab = self.target_vocab_size
        # Only beam 0 is live at the start, so the first step expands one hypothesis.
        scores = mx.where(mx.arange(beams) == 0, 0.0, -mx.inf)[None, :] * mx.ones((batch, 1))
        finished = mx.zeros((batch, beams), mx.bool_)
        lengths = mx.zeros((batch, beams), mx.int32)
        sequences = None  # (B, beams, steps) from the first step on
        for _ in range(max_length):
            log_probs = nn.log_softmax(decoder.next_logits(), axis=-1).reshape(batch, beams, vocab)
            if end_token is not None:  # a finished hypothesis only extends with end_token, free
                stay = mx.where(mx.arange(vocab) == end_token, 0.0, -mx.inf)
                log_probs = mx.where(finished[..., None], stay, log_probs)
            candidates = (scores[..., None] + log_probs).reshape(batch, beams * vocab)
            best = mx.argsort(-candidates, axis=-1)[:, :beams]
            scores = mx.take_along_axis(candidates, best, axis=-1)
            parent, token = best // vocab, (best % vocab).astype(mx.int32)
            if sequences is None:
                sequences = token[..., None]
            else:
                kept = mx.take_along_axis(sequences, parent[..., None], axis=1)
                sequences = mx.concatenate([kept, token[..., None]], axis=2)
            was_finished = mx.take_along_axis(finished, parent, axis=1)
            lengths = mx.take_along_axis(lengths, parent, axis=1) + (~was_finished)
            if end_token is not None:
                finished = was_finished | (token == end_token)
            decoder.reorder((mx.arange(batch)[:, None] * beams + parent).reshape(-1))
            decoder.append(token.reshape(-1))
            if end_token is not None and finished.all().item():
                break
        normalised = scores / lengths.astype(mx.float32) ** alpha
        best = mx.argmax(normalised, axis=-1)
        return mx.take_along_axis(sequences, best[:, None, None], axis=1)[:, 0]


class _IncrementalDecoder:
    """The decoder's state during generation: the tokens so far, and (with ``use_cache``) the
    self-attention KV caches, so each step runs one position; without the cache each step
    re-runs the whole prefix (a reference for the cached path)."""

    def __init__(self, model: LiquidSeq2Seq, memory, source_mask, start_token, use_cache):
        self.model, self.source_mask, self.use_cache = model, source_mask, use_cache
        self.memory_heads = model.memory_heads(memory)
        self.tokens = mx.full((memory.shape[0], 1), start_token, mx.int32)
        self.caches = None

    def next_logits(self) -> mx.array:
        """Logits ``(rows, V)`` of the next token."""
        inputs = self.tokens[:, -1:] if self.use_cache else self.tokens
        logits, caches = self.model.decode(
            inputs, self.memory_heads, self.source_mask, self.caches if self.use_cache else None
        )
        if self.use_cache:
            self.caches = caches
        return logits[:, -1]

    def append(self, token: mx.array) -> None:
        self.tokens = mx.concatenate([self.tokens, token[:, None]], axis=1)
        mx.eval(self.tokens, self.caches)

    def reorder(self, rows: mx.array) -> None:
        """Keep rows ``rows`` (beam search: each surviving hypothesis's parent)."""
        self.tokens = self.tokens[rows]
        if self.caches is not None:
            self.caches = [
                AttentionCache(cache.keys[rows], cache.values[rows], cache.offset)
                for cache in self.caches
            ]
