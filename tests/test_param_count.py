"""``HybridBuilder.param_count`` is the parameter count of ``build``, from the same code path.

A hypothesis property over generated patterns (layer types and named patterns), sharing,
widths, options (valid and invalid) and wirings: ``param_count`` raises exactly when ``build``
raises, with the same exception and message, and otherwise equals the built model's parameter
count; every error speaks the builder's option names, never a layer's constructor keywords;
and what ``build`` accepts runs. Counting constructs the layers lazily, so it must not
materialise weights.
"""

import re
import warnings

import mlx.core as mx
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from mlx.utils import tree_flatten

from ncps_mlx.apps import cli
from ncps_mlx.hybrid import HybridBuilder, WiringResampledWarning, expand_layers
from ncps_mlx.wirings import AttentionWiring, AutoNCP

BUILTIN = (
    "attention",
    "cfc",
    "conv",
    "conv_attention",
    "ffn",
    "gla",
    "kan",
    "ltc",
    "mamba",
    "rwkv",
)


def parameter_count(model) -> int:
    return sum(array.size for _, array in tree_flatten(model.parameters()))


def outcome(function):
    """``("ok", value)`` or ``(exception type, message)``."""
    try:
        return "ok", function()
    except Exception as error:  # noqa: BLE001 - the property compares any exception
        return type(error), str(error)


# ---- generated configurations ------------------------------------------------------------------

BAD = st.sampled_from([None, 2.5, "4", True])  # None is valid for some options, not others
INTS = {  # option -> the integers drawn (below 1 is invalid for all of them, but spline order 0)
    "attention_num_heads": (-1, 9),
    "attention_head_dim": (-1, 12),
    "attention_window_size": (-1, 8),
    "conv_kernel_size": (-1, 6),
    "ffn_hidden_size": (-1, 96),
    "gla_num_heads": (-1, 9),
    "gla_head_dim": (-1, 12),
    "kan_grid_size": (-1, 8),
    "kan_spline_order": (-1, 4),
    "liquid_features": (-1, 20),
    "liquid_units": (-1, 48),
    "mamba_conv_width": (-1, 6),
    "mamba_expand_factor": (-1, 4),
    "mamba_state_size": (-1, 32),
    "rwkv_head_size": (-1, 33),
}
UNKNOWN = ("attention_heads", "kernel_size", "mamba_state")  # not builder options


def option_values(option):
    low, high = INTS[option]
    return st.one_of(st.integers(1, high), st.integers(1, high), st.integers(low, high), BAD)


# A wiring is drawn as a recipe and made fresh for every call: liquid cells build theirs in
# place, exactly as ``build`` does.
WIRINGS = {
    "attention": lambda: AttentionWiring(8, 2, 8, seed=1),  # a built projection mask
    "autoncp_unbuilt": lambda: AutoNCP(24, 4, seed=2),  # no synapses until built: masks fail
    "autoncp_built": lambda: built(AutoNCP(24, 4, seed=3), 8),
    "not_a_wiring": lambda: "dense",
}


def built(wiring, inputs):
    wiring.build(inputs)
    return wiring


def make_wiring(recipe):
    if recipe is None:
        return None
    if isinstance(recipe, dict):
        return {name: WIRINGS[value]() for name, value in recipe.items()}
    return WIRINGS[recipe]()


wiring_recipes = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.sampled_from(sorted(WIRINGS)),
    st.dictionaries(st.sampled_from(BUILTIN), st.sampled_from(sorted(WIRINGS)), max_size=2),
)


LAYER_ITEMS = st.one_of(*[st.sampled_from(BUILTIN)] * 4, st.sampled_from(HybridBuilder.PATTERNS))


@st.composite
def configurations(draw):
    pattern = draw(
        st.one_of(
            st.lists(LAYER_ITEMS, min_size=1, max_size=5),
            st.lists(LAYER_ITEMS, min_size=1, max_size=5),
            LAYER_ITEMS,  # one layer type or named pattern, as a string
        )
    )
    shared = draw(st.lists(st.sampled_from(BUILTIN), max_size=3))
    widths = st.sampled_from([8, 16, 32, 48, 64])
    hidden = draw(st.one_of(widths, widths, widths, st.integers(-1, 40)))
    embed = draw(st.one_of(st.integers(1, 6), st.integers(1, 6), st.integers(-1, 6)))
    layers = set(expand_layers(pattern))
    read = sorted({o for name in layers for o in HybridBuilder._registry[name].options})
    chosen = draw(st.lists(st.sampled_from(read), unique=True, max_size=4)) if read else []
    options = {option: draw(option_values(option)) for option in chosen}
    if draw(st.integers(0, 9)) == 0:  # an option that no layer reads, or no option at all
        other = sorted(set(INTS) - set(read)) + list(UNKNOWN)
        options[draw(st.sampled_from(other))] = draw(st.integers(1, 4))
    return pattern, embed, hidden, tuple(shared), options, draw(wiring_recipes)


#: Constructor keywords that are not also builder options (``d_model``, ``num_heads``, ...): an
#: error reaching the user through the builder must not name them.
KEYWORDS = {"d_model"} | {
    keyword for t in HybridBuilder._registry.values() for keyword in t.options.values()
}
LAYER_WORDS = re.compile(rf"\b({'|'.join(sorted(KEYWORDS - set(HybridBuilder.options())))})\b")


@settings(max_examples=600, deadline=None)
@given(configurations())
def test_param_count_raises_iff_build_raises_and_otherwise_counts_the_built_model(config):
    pattern, embed, hidden, shared, options, recipe = config

    def call(method):
        kwargs = dict(options)
        if recipe is not None:
            kwargs["wiring"] = make_wiring(recipe)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WiringResampledWarning)
            return method(pattern, embed, hidden, shared=shared, **kwargs)

    counted = outcome(lambda: call(HybridBuilder.param_count))
    model = outcome(lambda: call(HybridBuilder.build))
    built = model if model[0] != "ok" else ("ok", parameter_count(model[1]))
    event("built" if built[0] == "ok" else f"raised {built[0].__name__}")
    assert counted == built
    if built[0] != "ok":  # a documented error, in the user's names: hidden_size, not d_model
        assert built[0] in (ValueError, TypeError), built
        assert set(LAYER_WORDS.findall(built[1])) <= set(options), built[1]
        return
    x = mx.random.normal((2, 3, embed))  # what build accepts runs, on the input it was built for
    y, _ = model[1](x)
    assert y.shape == (2, 3, hidden) and mx.isfinite(y).all().item()


# ---- fixed cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HybridBuilder.PATTERNS)
@pytest.mark.parametrize(("layers", "hidden"), [(4, 64), (7, 96)])
def test_named_patterns_count_their_built_models(name, layers, hidden):
    model = HybridBuilder.build_pattern(name, layers, 5, hidden, rwkv_head_size=32)
    pattern, shared = HybridBuilder.named_pattern(name, layers)
    count = HybridBuilder.param_count(pattern, 5, hidden, shared=shared, rwkv_head_size=32)
    assert count == parameter_count(model)


def test_liquid_layers_and_a_projection_wiring_count_their_built_models():
    pattern = ["cfc", "attention", "ltc", "kan", "conv_attention", "cfc"]
    options = {"liquid_units": 20, "attention_num_heads": 2, "kan_grid_size": 3}

    def wiring():
        return {"attention": AttentionWiring(8, 2, 8, seed=4), "ltc": AutoNCP(24, 5, seed=5)}

    model = HybridBuilder.build(pattern, 3, 24, shared=("cfc",), wiring=wiring(), **options)
    count = HybridBuilder.param_count(pattern, 3, 24, shared=("cfc",), wiring=wiring(), **options)
    assert count == parameter_count(model)


def test_heads_that_do_not_divide_the_width_are_refused_by_param_count_as_by_build(capsys):
    message = (
        r"attention layer: hidden_size \(256\) must be divisible by attention_num_heads \(5\) "
        r"when attention_head_dim is not given"
    )
    with pytest.raises(ValueError, match=message):
        HybridBuilder.build(["attention"], 8, 256, attention_num_heads=5)
    with pytest.raises(ValueError, match=message):
        HybridBuilder.param_count(["attention"], 8, 256, attention_num_heads=5)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["hybrid", "attention", "attention_num_heads=5", "--hidden-size", "256"])
    assert exit_info.value.code == 2
    assert "must be divisible by attention_num_heads (5)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("layers", "options", "message"),
    [
        (["gla"], {"gla_num_heads": 3}, r"gla layer: hidden_size \(32\) .* gla_num_heads \(3\)"),
        (["attention"], {"attention_head_dim": 3}, r"attention_head_dim must be even for RoPE"),
        (["attention"], {"attention_num_heads": 32}, r"attention_head_dim \(hidden_size // "),
        (["rwkv"], {"rwkv_head_size": 5}, r"hidden_size \(32\) .* rwkv_head_size \(5\)"),
        (["mamba"], {"mamba_state_size": 0}, r"mamba layer: mamba_state_size must be >= 1"),
        (["mamba"], {"mamba_expand_factor": 2.5}, r"mamba_expand_factor must be an integer"),
        (["ffn"], {"ffn_hidden_size": 0}, r"ffn layer: ffn_hidden_size must be >= 1"),
        (["kan"], {"kan_spline_order": -1}, r"kan_spline_order must be >= 0"),
        (["conv_attention"], {"conv_kernel_size": 0}, r"conv_kernel_size must be >= 1"),
        (["cfc"], {"liquid_units": 10, "liquid_features": 8}, r"liquid_units \(10\) .* 11"),
        (["ltc"], {"liquid_features": 0}, r"ltc layer: liquid_features must be >= 1"),
    ],
)
def test_layer_errors_name_the_builder_options_the_user_passed(layers, options, message):
    with pytest.raises((ValueError, TypeError), match=message) as raised:
        HybridBuilder.build(layers, 4, 32, **options)
    assert not LAYER_WORDS.search(str(raised.value))


def test_counting_materialises_nothing_and_memory_stays_flat():
    # hidden 1024, every built-in layer type: ~75M parameters (300 MB), none of them evaluated
    pattern = list(BUILTIN)
    count = HybridBuilder.param_count(pattern, 8, 1024)
    mx.reset_peak_memory()
    active = mx.get_active_memory()
    for _ in range(50):
        assert HybridBuilder.param_count(pattern, 8, 1024) == count
    assert count > 5e7
    assert mx.get_active_memory() == active
    assert mx.get_peak_memory() < 1e-3 * 4 * count  # < 0.1 % of the float32 weights
