"""HybridBuilder: patterns, options, wirings, exact parameter counts, streaming, user layers."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from training import train

from ncps_mlx.hybrid import HybridBuilder, HybridModel, WiredLinear
from ncps_mlx.wirings import AttentionWiring, AutoNCP

E, H = 6, 32
SMALL = {"rwkv_head_size": 16, "gla_num_heads": 2, "attention_num_heads": 2}
EVERY_LAYER = [
    "mamba",
    "attention",
    "gla",
    "rwkv",
    "ffn",
    "kan",
    "conv",
    "conv_attention",
    "cfc",
    "ltc",
]


def parameter_count(model) -> int:
    return sum(array.size for _, array in tree_flatten(model.parameters()))


def test_visualize_draws_the_pattern_with_a_legend():
    text = HybridBuilder.visualize(["mamba", "attention", "gla", "ffn"])
    assert text == "Layer pattern: M → A → G → F\nLegend: A=attention, F=ffn, G=gla, M=mamba"


@pytest.mark.parametrize("layer", EVERY_LAYER)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "mamba_state_size": 8,
            "mamba_expand_factor": 3,
            "attention_head_dim": 4,
            "attention_window_size": 3,
            "gla_head_dim": 8,
            "kan_grid_size": 3,
            "conv_kernel_size": 2,
            "liquid_units": 24,
            "ffn_hidden_size": 20,
        },
    ],
    ids=["defaults", "options"],
)
def test_param_count_equals_the_built_models_count(layer, options):
    options = {**SMALL, **options}
    expected = parameter_count(HybridBuilder.build([layer, "ffn", layer], E, H, **options))
    assert HybridBuilder.param_count([layer, "ffn", layer], E, H, **options) == expected


def test_the_input_projection_norms_and_blocks_are_the_documented_stack():
    model = HybridBuilder.build(["ffn", "ffn"], E, H)
    x = mx.random.normal((2, 5, E))
    h = model.input_projection(x)
    for norm, layer in zip(model.norms, model.layers, strict=True):
        h = h + layer(norm(h))[0]
    np.testing.assert_allclose(np.array(model(x)[0]), np.array(model.final_norm(h)), atol=1e-6)


@pytest.mark.parametrize("name", HybridBuilder.PATTERNS)
def test_named_patterns_build_and_stream_step_by_step_like_the_whole_call(name):
    mx.random.seed(0)
    model = HybridBuilder.build_pattern(name, 6, E, H, **SMALL)
    assert isinstance(model, HybridModel) and len(model.pattern) == 6
    x = mx.random.normal((2, 7, E))
    whole, _ = model(x)
    assert whole.shape == (2, 7, H)
    cache, steps = model.make_cache(2), []
    for t in range(7):
        y_t, cache = model.step(x[:, t], cache)
        steps.append(y_t)
    np.testing.assert_allclose(np.array(mx.stack(steps, 1)), np.array(whole), atol=1e-4)
    first, cache = model(x[:, :3])
    second, _ = model(x[:, 3:], cache)
    np.testing.assert_allclose(
        np.array(mx.concatenate([first, second], 1)), np.array(whole), atol=1e-4
    )


def test_named_patterns_have_the_documented_layers():
    assert HybridBuilder.named_pattern("jamba_like", 4)[0] == ["mamba", "attention"] * 2
    assert HybridBuilder.named_pattern("mamba_gla", 3)[0] == ["mamba", "mamba", "gla"]
    assert (
        HybridBuilder.named_pattern("rwkv_attention", 6)[0]
        == ["rwkv"] * 3 + ["attention"] + ["rwkv"] * 2
    )
    assert HybridBuilder.named_pattern("full_hybrid", 6)[0] == [
        "mamba",
        "attention",
        "gla",
        "rwkv",
        "mamba",
        "ffn",
    ]
    assert HybridBuilder.named_pattern("ssm_stack", 3)[0] == ["mamba"] * 3
    pattern, shared = HybridBuilder.named_pattern("zamba_like", 6)
    assert pattern == ["mamba", "mamba", "attention"] * 2 and shared == ("attention",)


def test_zamba_like_reuses_one_attention_block():
    pattern, shared = HybridBuilder.named_pattern("zamba_like", 6)
    model = HybridBuilder.build_pattern("zamba_like", 6, E, H)
    unshared = HybridBuilder.build(pattern, E, H)
    attention = parameter_count(unshared.layers[2])
    assert len(model.layers) == 5
    assert parameter_count(model) == parameter_count(unshared) - attention
    assert HybridBuilder.param_count(pattern, E, H, shared=shared) == parameter_count(model)


def test_a_wiring_masks_every_projection_and_a_dict_targets_layer_types():
    wiring = AttentionWiring(8, 2, 8, seed=1)
    model = HybridBuilder.build(["attention", "ffn"], E, H, wiring=wiring, **SMALL)
    densities = [m.density for _, m in model.named_modules() if isinstance(m, WiredLinear)]
    assert densities and max(densities) < 1.0
    by_type = HybridBuilder.build(["attention", "ffn"], E, H, wiring={"ffn": wiring}, **SMALL)
    attention = [
        m.density for _, m in by_type.layers[0].named_modules() if isinstance(m, WiredLinear)
    ]
    ffn = [m.density for _, m in by_type.layers[1].named_modules() if isinstance(m, WiredLinear)]
    assert set(attention) == {1.0} and max(ffn) < 1.0
    liquid = HybridBuilder.build(["cfc"], E, H, wiring={"cfc": AutoNCP(20, 5)}, liquid_features=5)
    assert liquid.layers[0].rnn.state_size == 20


def test_unknown_layers_options_and_patterns_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown layer types \\['lstm'\\]; valid: .*mamba"):
        HybridBuilder.build(["mamba", "lstm"], E, H)
    with pytest.raises(
        ValueError, match="unknown options \\['mamba_heads'\\]; valid: .*mamba_state_size"
    ):
        HybridBuilder.build(["mamba"], E, H, mamba_heads=2)
    with pytest.raises(ValueError, match="unknown pattern 'jamba'; valid: .*jamba_like"):
        HybridBuilder.build_pattern("jamba", 4, E, H)
    with pytest.raises(ValueError, match="pattern"):
        HybridBuilder.build("mamba", E, H)


def test_users_can_register_their_own_layer_type():
    class Scale(nn.Module):
        def __init__(self, d_model, wiring=None, factor=2.0):
            super().__init__()
            self.weight = mx.ones((d_model,)) * factor

        def make_cache(self, batch):
            return None

        def __call__(self, x, cache=None):
            return x * self.weight, cache

        def step(self, x_t, cache=None):
            return x_t * self.weight, cache

    HybridBuilder.register("scale", "S", Scale, {"scale_factor": "factor"})
    try:
        model = HybridBuilder.build(["scale", "ffn"], E, H, scale_factor=3.0)
        assert float(model.layers[0].weight[0]) == 3.0
        assert "S=scale" in HybridBuilder.visualize(["scale"])
    finally:
        HybridBuilder._registry.pop("scale")


def test_a_hybrid_stack_trains_on_a_small_sequence_task():
    mx.random.seed(3)
    model = HybridBuilder.build(["mamba", "attention", "ffn"], 1, 16, attention_num_heads=2)
    readout = nn.Linear(16, 1)
    t = np.linspace(0, 4 * np.pi, 24, dtype=np.float32)
    x = mx.array(np.stack([np.sin(t + p) for p in np.linspace(0, 2, 8)])[..., None])
    y = mx.array(np.stack([np.sin(t + p - 0.5) for p in np.linspace(0, 2, 8)])[..., None])

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stack, self.readout = model, readout

        def __call__(self, x):
            return self.readout(self.stack(x)[0])

    losses = train(Net(), lambda m: nn.losses.mse_loss(m(x), y), 60, 0.01)
    assert min(losses[-5:]) < losses[0] / 5


def test_param_count_materialises_no_weights():
    # MLX arrays are lazy: counting a ~780M-parameter stack allocates (almost) nothing.
    mx.reset_peak_memory()
    count = HybridBuilder.param_count(["mamba", "attention", "gla", "ffn"] * 2, 64, 4096)
    assert count > 5e8
    assert mx.get_peak_memory() < 0.001 * count * 4  # far below the weights' 3 GB


@pytest.mark.parametrize("layer", ["cfc", "ltc"])
@pytest.mark.parametrize(
    "wiring",
    [AutoNCP(40, 4, seed=2), AttentionWiring(8, 2, 8, seed=3)],
    ids=["autoncp", "attention"],
)
def test_param_count_of_liquid_layers_follows_their_wiring(layer, wiring):
    options = {"wiring": {layer: wiring}, "liquid_features": 6}
    built = parameter_count(HybridBuilder.build([layer], E, H, **options))
    assert HybridBuilder.param_count([layer], E, H, **options) == built


def test_opt_in_finite_checks_report_nan_inputs_of_a_hybrid_model():
    from ncps_mlx.checks import NonFiniteError, finite_checks

    model = HybridBuilder.build(["mamba", "ffn"], 4, 8)
    x = mx.zeros((1, 3, 4)).at[0, 2, 1].add(mx.nan)
    assert mx.isnan(model(x)[0]).any().item()  # off by default: NaN propagates
    with finite_checks(), pytest.raises(NonFiniteError, match=r"x\[0, 2, 1\] is nan"):
        model(x)
