"""Conv–attention fusion and the conv-transformer encoder: gate formula, streaming, wiring,
builder pattern and counts, masked pooling, argument errors and a learned task."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from training import train

from ncps_mlx.hybrid import HybridBuilder, WiredLinear
from ncps_mlx.hybrid.layers.conv_attention import ConvAttentionFusion
from ncps_mlx.hybrid.models.conv_transformer import ConvTransformerEncoder
from ncps_mlx.wirings import Random

D = 8
FUSIONS = {
    "full": lambda wiring=None: ConvAttentionFusion(D, 3, 2, wiring=wiring),
    "windowed": lambda wiring=None: ConvAttentionFusion(D, 2, 3, 6, window_size=3, wiring=wiring),
}


def parameter_count(module) -> int:
    return sum(array.size for _, array in tree_flatten(module.parameters()))


def sparse_wiring():
    wiring = Random(D, sparsity_level=0.5, random_seed=3)
    wiring.build(D)
    return wiring


# ---- the fusion layer ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_fusion_is_the_gated_mix_of_its_conv_and_attention_branches(name):
    mx.random.seed(0)
    layer = FUSIONS[name]()
    x = mx.random.normal((2, 7, D))
    local = np.array(layer.conv(x)[0], np.float64)
    attended = np.array(layer.attention(x)[0], np.float64)
    weight = np.array(layer.gate.weight, np.float64)
    bias = np.array(layer.gate.bias, np.float64)
    gate = 1.0 / (1.0 + np.exp(-(np.concatenate([local, attended], -1) @ weight.T + bias)))
    expected = gate * local + (1.0 - gate) * attended
    np.testing.assert_allclose(np.array(layer(x)[0]), expected, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_fusion_steps_equal_the_whole_sequence(name):
    mx.random.seed(1)
    layer = FUSIONS[name]()
    x = mx.random.normal((2, 11, D))
    whole, _ = layer(x)
    cache, steps = layer.make_cache(2), []
    for t in range(x.shape[1]):
        y_t, cache = layer.step(x[:, t], cache)
        steps.append(y_t)
    np.testing.assert_allclose(np.array(mx.stack(steps, 1)), np.array(whole), atol=1e-5)
    assert cache[1].offset == 11


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_fusion_chunks_with_the_cache_equal_the_whole_sequence(name):
    mx.random.seed(2)
    layer = FUSIONS[name]()
    x = mx.random.normal((2, 13, D))
    whole, _ = layer(x)
    cache, pieces = None, []
    for start, stop in [(0, 1), (1, 6), (6, 8), (8, 13)]:
        y, cache = layer(x[:, start:stop], cache)
        pieces.append(y)
    np.testing.assert_allclose(np.array(mx.concatenate(pieces, 1)), np.array(whole), atol=1e-5)


def test_fusion_outputs_do_not_depend_on_future_inputs():
    mx.random.seed(3)
    layer = FUSIONS["full"]()
    x = mx.random.normal((1, 10, D))
    changed = mx.concatenate([x[:, :6], x[:, 6:] + 5.0], axis=1)
    before, after = np.array(layer(x)[0]), np.array(layer(changed)[0])
    np.testing.assert_allclose(after[:, :6], before[:, :6], atol=1e-6)
    assert not np.allclose(after[:, 6:], before[:, 6:])


def test_a_wiring_masks_the_gate_and_both_branches_and_masked_weights_stay_zero():
    mx.random.seed(4)
    layer = ConvAttentionFusion(D, 3, 2, wiring=sparse_wiring())
    wired = dict((n, m) for n, m in layer.named_modules() if isinstance(m, WiredLinear))
    assert {"gate", "conv.in_proj", "attention.q_proj"} <= set(wired)
    assert all(module.density < 1.0 for module in wired.values())
    x, target = mx.random.normal((2, 6, D)), mx.random.normal((2, 6, D))
    losses = train(layer, lambda m: nn.losses.mse_loss(m(x)[0], target), 5, 0.05)
    assert losses[-1] < losses[0]  # the unmasked weights moved
    for module in wired.values():
        assert not (np.array(module.weight) * (1.0 - np.array(module._mask))).any()


# ---- builder pattern ----------------------------------------------------------------------------


def test_conv_transformer_pattern_cycles_conv_attention_fusion_ffn():
    pattern, shared = HybridBuilder.named_pattern("conv_transformer", 6)
    assert pattern == ["conv", "attention", "conv_attention", "ffn", "conv", "attention"]
    assert shared == ()
    assert HybridBuilder.visualize(pattern[:4]) == (
        "Layer pattern: V → A → X → F\nLegend: A=attention, F=ffn, V=conv, X=conv_attention"
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"conv_kernel_size": 2, "attention_num_heads": 2, "attention_head_dim": 6},
        {"attention_window_size": 3, "ffn_hidden_size": 20, "wiring": sparse_wiring()},
    ],
)
def test_conv_transformer_pattern_param_count_equals_the_built_models_count(options):
    model = HybridBuilder.build_pattern("conv_transformer", 5, 3, D, **options)
    pattern, _ = HybridBuilder.named_pattern("conv_transformer", 5)
    assert HybridBuilder.param_count(pattern, 3, D, **options) == parameter_count(model)
    fusion = model.layers[2]
    assert isinstance(fusion, ConvAttentionFusion)
    assert fusion.conv.kernel_size == options.get("conv_kernel_size", 4)
    assert fusion.attention.num_heads == options.get("attention_num_heads", 4)


# ---- the encoder --------------------------------------------------------------------------------


def encoder(pooling="mean", **kwargs):
    mx.random.seed(5)
    return ConvTransformerEncoder(3, D, 4, kernel_size=3, num_heads=2, pooling=pooling, **kwargs)


def test_encoder_body_is_the_named_pattern_and_counts_its_pooling_score():
    mean, attention = encoder("mean"), encoder("attention")
    assert mean.body.pattern == ["conv", "attention", "conv_attention", "ffn"]
    options = {"conv_kernel_size": 3, "attention_num_heads": 2}
    body = HybridBuilder.param_count(mean.body.pattern, 3, D, **options)
    assert parameter_count(mean) == body
    assert parameter_count(attention) == body + D


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_pooling_equals_an_explicit_average_of_the_valid_steps(pooling):
    model = encoder(pooling)
    x = mx.random.normal((2, 6, 3))
    mask = mx.array([[True] * 6, [True] * 4 + [False] * 2])
    sequence, pooled = model.encode(x, mask)
    h = np.array(sequence, np.float64)
    for b, valid in enumerate((6, 4)):
        if pooling == "mean":
            weights = np.ones(valid)
        else:
            scores = h[b, :valid] @ np.array(model.pool_score.weight, np.float64)[0]
            weights = np.exp(scores - scores.max())
        expected = (weights[:, None] * h[b, :valid]).sum(0) / weights.sum()
        np.testing.assert_allclose(np.array(pooled[b]), expected, atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_pooled_embedding_of_a_padded_batch_equals_the_unpadded_sequences(pooling):
    model = encoder(pooling)
    lengths, width = (7, 3, 5), 7
    sequences = [mx.random.normal((1, n, 3)) for n in lengths]
    padded = mx.concatenate(
        [
            mx.pad(s, [(0, 0), (0, width - s.shape[1]), (0, 0)], constant_values=9.0)
            for s in sequences
        ]
    )
    mask = mx.arange(width)[None, :] < mx.array(lengths)[:, None]
    sequence, pooled = model(padded, mask=mask)
    assert not np.allclose(np.array(model(padded)[1]), np.array(pooled), atol=1e-3)
    for b, (alone, n) in enumerate(zip(sequences, lengths, strict=True)):
        alone_sequence, alone_pooled = model(alone)
        np.testing.assert_allclose(np.array(pooled[b]), np.array(alone_pooled[0]), atol=1e-5)
        np.testing.assert_allclose(
            np.array(sequence[b, :n]), np.array(alone_sequence[0]), atol=1e-5
        )


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_a_sequence_without_valid_steps_pools_to_zeros_with_finite_gradients(pooling):
    model = encoder(pooling)
    x = mx.random.normal((2, 5, 3))
    mask = mx.array([[True] * 5, [False] * 5])
    pooled = model(x, mask)[1]
    np.testing.assert_array_equal(np.array(pooled[1]), np.zeros(D))
    _, grads = nn.value_and_grad(model, lambda m: (m(x, mask)[1] ** 2).sum())(model)
    assert all(np.isfinite(np.array(g)).all() for _, g in tree_flatten(grads))


def test_without_return_pooled_encode_returns_the_sequence_only():
    model = encoder()
    x = mx.random.normal((2, 5, 3))
    sequence = model.encode(x, return_pooled=False)
    assert sequence.shape == (2, 5, D)
    np.testing.assert_allclose(np.array(sequence), np.array(model(x)[0]), atol=1e-6)


@pytest.mark.parametrize(
    "call,error",
    [
        (lambda: encoder()(mx.zeros((2, 5, 4))), "x must be \\(B, T, input_size=3\\)"),
        (lambda: encoder()(mx.zeros((5, 3))), "x must be"),
        (lambda: encoder()(mx.zeros((2, 5, 3)), mask=mx.ones((2, 4), mx.bool_)), "mask must be"),
        (lambda: encoder()(mx.zeros((2, 5, 3)), mask=mx.ones((2,), mx.bool_)), "mask must be"),
        (lambda: encoder("max"), "pooling must be one of"),
        (lambda: ConvTransformerEncoder(0), "input_size"),
        (lambda: ConvTransformerEncoder(3, d_model=0), "d_model"),
        (lambda: ConvTransformerEncoder(3, num_layers=0), "num_layers"),
        (lambda: ConvTransformerEncoder(3, kernel_size=0), "kernel_size"),
        (lambda: ConvTransformerEncoder(3, d_model=8, num_heads=3), "num_heads"),
        (lambda: ConvAttentionFusion(D, window_size=0), "window_size"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(call, error):
    with pytest.raises(ValueError, match=error):
        call()


# ---- learning -----------------------------------------------------------------------------------


def bigram_task(count, length, seed):
    """One-hot tokens from 4 symbols; the label is whether ``2`` is directly followed by ``3``
    anywhere (a local pattern, detected at any position)."""
    tokens = np.random.default_rng(seed).integers(0, 4, (count, length))
    labels = ((tokens[:, :-1] == 2) & (tokens[:, 1:] == 3)).any(axis=1)
    return mx.array(np.eye(4, dtype=np.float32)[tokens]), mx.array(labels.astype(np.int32))


def test_encoder_with_a_linear_head_learns_whether_a_bigram_occurs():
    x, labels = bigram_task(128, 12, seed=0)
    x_test, labels_test = bigram_task(256, 12, seed=1)
    mx.random.seed(0)

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = ConvTransformerEncoder(
                4, 16, 4, kernel_size=2, num_heads=2, pooling="attention"
            )
            self.head = nn.Linear(16, 2)

        def __call__(self, x):
            return self.head(self.encoder(x)[1])

    model = Classifier()
    losses = train(
        model, lambda m: nn.losses.cross_entropy(m(x), labels, reduction="mean"), 40, 0.01
    )
    assert min(losses[-5:]) < losses[0] / 5
    majority = max(labels_test.mean().item(), 1 - labels_test.mean().item())
    test_accuracy = (mx.argmax(model(x_test), axis=-1) == labels_test).mean().item()
    assert test_accuracy > max(0.9, majority + 0.2)
