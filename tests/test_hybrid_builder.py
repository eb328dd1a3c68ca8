"""HybridBuilder: patterns, options, wirings, exact parameter counts, streaming, user layers."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from model_helpers import ElementwiseLayer
from training import train

from ncps_mlx.hybrid import HybridBuilder, HybridModel, WiredLinear, expand_layers
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


def test_every_layer_type_has_its_own_letter_and_the_legend_explains_each():
    text = HybridBuilder.visualize(EVERY_LAYER)
    assert text == (
        "Layer pattern: M → A → G → R → F → K → V → X → C → L\n"
        "Legend: A=attention, C=cfc, F=ffn, G=gla, K=kan, L=ltc, M=mamba, R=rwkv, V=conv, "
        "X=conv_attention"
    )
    codes = [HybridBuilder._registry[name].code for name in HybridBuilder.layer_types()]
    assert len(set(codes)) == len(codes)
    for name in EVERY_LAYER:  # a one-layer diagram explains its letter too
        code = HybridBuilder._registry[name].code
        assert HybridBuilder.visualize([name]) == f"Layer pattern: {code}\nLegend: {code}={name}"


def test_visualize_takes_named_patterns_like_build():
    assert HybridBuilder.visualize("zamba_like") == (
        "Layer pattern: M → M → A\nLegend: A=attention, M=mamba"
    )


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
    with pytest.raises(ValueError, match=r"unknown layer types or patterns \['lstm'\]") as error:
        HybridBuilder.build(["mamba", "lstm"], E, H)
    assert "build_pattern" in str(error.value)
    assert str(HybridBuilder.layer_types()) in str(error.value)
    assert str(list(HybridBuilder.PATTERNS)) in str(error.value)
    with pytest.raises(
        ValueError, match="unknown options \\['mamba_heads'\\]; valid: .*mamba_state_size"
    ):
        HybridBuilder.build(["mamba"], E, H, mamba_heads=2)
    with pytest.raises(ValueError, match="unknown pattern 'jamba'; valid: .*jamba_like"):
        HybridBuilder.build_pattern("jamba", 4, E, H)
    with pytest.raises(ValueError, match="non-empty list"):
        HybridBuilder.build([], E, H)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"shared": "attention"}, TypeError, "shared must be a list or tuple"),
        ({"shared": ("attn",)}, ValueError, r"shared: unknown layer types \['attn'\]"),
        ({"wiring": {"attn": AutoNCP(20, 4)}}, ValueError, r"wiring: unknown layer types"),
        ({"wiring": {"ffn": "dense"}}, TypeError, r"wiring\['ffn'\] must be a Wiring, got str"),
        ({"wiring": 3}, TypeError, "wiring must be a Wiring or a dict of Wirings"),
    ],
)
def test_sharing_and_wiring_arguments_are_checked_by_name(options, error, match):
    with pytest.raises(error, match=match):
        HybridBuilder.build(["attention", "ffn"], E, H, **SMALL, **options)
    with pytest.raises(error, match=match):
        HybridBuilder.param_count(["attention", "ffn"], E, H, **SMALL, **options)


# ---- named patterns where a layer list is expected -------------------------------------------


def test_expand_layers_expands_pattern_names_to_one_cycle_in_place():
    assert expand_layers("jamba_like") == ["mamba", "attention"]
    assert expand_layers("zamba_like") == ["mamba", "mamba", "attention"]
    assert expand_layers("ssm_stack") == ["mamba"]
    assert expand_layers("conv_transformer") == ["conv", "attention", "conv_attention", "ffn"]
    assert expand_layers("mamba") == ["mamba"]
    assert expand_layers(["ffn", "jamba_like", "jamba_like", "cfc"]) == [
        "ffn",
        "mamba",
        "attention",
        "mamba",
        "attention",
        "cfc",
    ]
    assert expand_layers(("rwkv", "gla")) == ["rwkv", "gla"]


@pytest.mark.parametrize("name", HybridBuilder.PATTERNS)
def test_one_cycle_of_each_pattern_is_its_named_pattern_of_that_length(name):
    layers = expand_layers(name)
    assert HybridBuilder.named_pattern(name, len(layers))[0] == layers
    assert HybridBuilder.named_pattern(name, 2 * len(layers))[0] == expand_layers([name] * 2)


@pytest.mark.parametrize(
    "spec", ["jamba", ["mamba", "lstm"], [], "", ["mamba", 3], 3, None, {"mamba": 1}]
)
def test_expand_layers_refuses_anything_else_naming_patterns_layer_types_and_build_pattern(spec):
    with pytest.raises(ValueError) as error:
        expand_layers(spec)
    message = str(error.value)
    assert "build_pattern" in message
    assert all(name in message for name in HybridBuilder.PATTERNS)
    assert all(name in message for name in HybridBuilder.layer_types())


def test_build_and_param_count_accept_named_patterns_where_a_layer_list_is_expected():
    model = HybridBuilder.build("jamba_like", E, H, **SMALL)
    assert model.pattern == ["mamba", "attention"]
    mixed = HybridBuilder.build(["ffn", "jamba_like"], E, H, **SMALL)
    assert mixed.pattern == ["ffn", "mamba", "attention"]
    expected = parameter_count(HybridBuilder.build(["ffn", "mamba", "attention"], E, H, **SMALL))
    assert parameter_count(mixed) == expected
    assert HybridBuilder.param_count(["ffn", "jamba_like"], E, H, **SMALL) == expected


def test_a_layer_type_cannot_take_a_pattern_name():
    with pytest.raises(ValueError, match="not a pattern name"):
        HybridBuilder.register("jamba_like", "J", HybridBuilder._registry["ffn"].factory)
    assert "jamba_like" not in HybridBuilder.layer_types()


def test_users_can_register_their_own_layer_type():
    class Scale(ElementwiseLayer):
        def __init__(self, d_model, wiring=None, factor=2.0):
            super().__init__()
            self.weight = mx.ones((d_model,)) * factor

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


def test_one_layer_is_built_and_refused_exactly_as_in_a_stack():
    layer = HybridBuilder.layer("attention", H, attention_num_heads=2, mamba_state_size=4)
    stack = HybridBuilder.build(["attention"], E, H, attention_num_heads=2)
    assert parameter_count(layer) == parameter_count(stack.layers[0])
    assert (layer.num_heads, layer.head_dim) == (2, H // 2)
    with pytest.raises(ValueError) as alone:
        HybridBuilder.layer("gla", H, gla_num_heads=3)
    with pytest.raises(ValueError) as stacked:
        HybridBuilder.build(["gla"], E, H, gla_num_heads=3)
    assert str(alone.value) == str(stacked.value)
    assert str(alone.value).startswith("gla layer: hidden_size (32) must be divisible by gla_num")
