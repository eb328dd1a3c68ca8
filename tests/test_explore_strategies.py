"""Component registry (layers, options, wirings, compatibility) and composition strategies."""

import inspect
import math
from collections import Counter

import numpy as np
import pytest
from mlx.utils import tree_flatten

from ncps_mlx.explore import Architecture
from ncps_mlx.explore.registry import NEUTRAL_SCORE, ComponentRegistry
from ncps_mlx.explore.strategies import STRATEGIES, crossover, greedy, mutate, propose, random_walk
from ncps_mlx.hybrid import WiredLinear
from ncps_mlx.hybrid.layers.ffn import FeedForward
from ncps_mlx.hybrid.models.builder import HybridBuilder
from ncps_mlx.wirings import Wiring

EVERY_LAYER = [
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
]
SEQUENCE_MIXERS = ["mamba", "gla", "attention", "conv", "conv_attention", "cfc", "ltc"]
WIDTHS = (8, 16, 32, 64)


@pytest.fixture
def registry():
    return ComponentRegistry()


@pytest.fixture
def user_layer():
    """A user layer type (an FFN under another name), registered for one test."""
    HybridBuilder.register("my_mlp", "Q", FeedForward, {})
    yield "my_mlp"
    HybridBuilder._registry.pop("my_mlp")


def parameter_count(model) -> int:
    return sum(array.size for _, array in tree_flatten(model.parameters()))


def follows_best(registry, pattern) -> bool:
    """Whether every layer after the first has the highest score after its predecessor."""
    layers = registry.layers()
    return all(
        registry.score(a, b) == max(registry.score(a, c) for c in layers)
        for a, b in zip(pattern[:-1], pattern[1:], strict=True)
    )


# ---------------------------------------------------------------------- registry: components
def test_registry_lists_every_builder_layer_type(registry):
    assert registry.layers() == EVERY_LAYER


def test_user_layers_appear_with_neutral_scores_and_no_searched_options(registry, user_layer):
    assert user_layer in registry.layers()
    assert registry.score(user_layer, "ffn") == registry.score("mamba", user_layer) == 0.5
    assert registry.layer_options(user_layer) == {}
    architecture = random_walk(registry, 6, temperature=100.0, seed=0, start=user_layer)
    assert architecture.pattern[0] == user_layer and architecture.param_count(8) > 0


def test_layer_options_are_the_layers_searched_options_at_the_width(registry):
    assert registry.layer_options("ffn", 32) == {"ffn_hidden_size": (None, 64)}
    assert registry.layer_options("rwkv", 32) == {"rwkv_head_size": (8, 16, 32)}
    assert registry.layer_options("mamba", 16) == {
        "mamba_conv_width": (3, 4),
        "mamba_expand_factor": (1, 2),
        "mamba_state_size": (8, 16),
    }
    assert set(registry.layer_options("conv_attention")) == {
        "attention_num_heads",
        "attention_window_size",
        "conv_kernel_size",
    }


def test_option_values_must_fit_the_width_and_the_other_options(registry):
    assert registry.fits("attention_num_heads", 4, 64)
    assert not registry.fits("attention_num_heads", 3, 64)  # 3 does not divide 64
    assert not registry.fits("attention_num_heads", 8, 8)  # head size 1 is odd (RoPE)
    assert registry.fits("attention_num_heads", 3, 64, {"attention_head_dim": 8})
    assert registry.fits("gla_num_heads", 8, 8) and not registry.fits("gla_num_heads", 3, 8)
    assert not registry.fits("rwkv_head_size", 64, 32)
    assert registry.valid_values("liquid_units", 64, {"liquid_features": 24}) == (32,)
    assert registry.valid_values("attention_head_dim", 64) == ()  # not searched


@pytest.mark.parametrize("width", [0, 4, 12, 60])
def test_widths_must_be_positive_multiples_of_8(registry, width):
    with pytest.raises(ValueError, match="hidden_size"):
        registry.wiring_specs(width)


# ---------------------------------------------------------------------- registry: wirings
def test_wirings_are_the_projection_wirings_and_dense(registry):
    names = ["AttentionWiring", "AutoNCP", "HierarchicalWiring", "MultiScaleWiring", "Random"]
    assert sorted(registry.wirings()) == names
    specs = registry.wiring_specs(32)
    assert specs[0] is None
    assert [spec["class_name"] for spec in specs[1:]] == names
    for spec in specs[1:]:
        assert Wiring.from_spec(spec).units in range(32, 41)  # about H neurons


@pytest.mark.parametrize("width", [8, 64])
def test_every_wiring_spec_builds_a_masked_model_of_every_layer(registry, width):
    options = {"rwkv_head_size": 8}
    for spec in registry.wiring_specs(width)[1:]:
        architecture = Architecture(tuple(EVERY_LAYER), width, options, spec)
        model = architecture.build(8)
        assert parameter_count(model) == architecture.param_count(8)
        densities = [m.density for _, m in model.named_modules() if isinstance(m, WiredLinear)]
        assert min(densities) < 1.0, spec["class_name"]  # the wiring masks projections


def test_user_wirings_replace_the_defaults():
    registry = ComponentRegistry(
        wirings={"Sparse": lambda h: {"class_name": "Random", "args": {"units": h}}}
    )
    assert registry.wiring_specs(16) == [None, {"class_name": "Random", "args": {"units": 16}}]


# ---------------------------------------------------------------------- registry: scores
def test_default_scores_follow_the_documented_table(registry):
    assert registry.score("attention", "ffn") == 0.9
    assert registry.score("mamba", "kan") == 0.8
    assert registry.score("ffn", "mamba") == 0.8
    assert registry.score("ffn", "ffn") == 0.2
    assert registry.score("attention", "attention") == 0.5
    assert registry.score("mamba", "attention") == 0.8
    assert registry.score("mamba", "mamba") == 0.7
    assert registry.score("rwkv", "ffn") == 0.5
    assert registry.score("conv", "attention") == 0.8
    assert registry.score("conv", "conv_attention") == 0.3
    assert registry.score("cfc", "ltc") == 0.3


def test_a_channel_mixer_follows_a_sequence_mixer_better_than_another_channel_mixer(registry):
    for mixer in SEQUENCE_MIXERS:
        for channel in ("ffn", "kan"):
            assert registry.score(mixer, channel) > registry.score("ffn", channel) + 0.4


def test_every_default_score_is_in_the_unit_interval(registry):
    scores = [registry.score(a, b) for a in EVERY_LAYER for b in EVERY_LAYER]
    assert all(0.0 <= s <= 1.0 for s in scores) and len(set(scores)) > 3


def test_set_score_overrides_and_round_trips_through_json(registry):
    registry.set_score("ffn", "ffn", 0.75)
    registry.set_score("mamba", "ffn", 0)
    assert registry.score("ffn", "ffn") == 0.75 and registry.score("mamba", "ffn") == 0.0
    assert registry.score("ffn", "kan") == 0.2  # others unchanged
    assert registry.overrides() == {("ffn", "ffn"): 0.75, ("mamba", "ffn"): 0.0}
    again = ComponentRegistry.from_json(registry.to_json())
    assert again.overrides() == registry.overrides() and again.score("ffn", "ffn") == 0.75
    from_store = ComponentRegistry(registry.overrides())  # as a results store returns them
    assert from_store.score("mamba", "ffn") == 0.0


def test_overrides_of_unregistered_layers_are_kept_for_later(user_layer):
    registry = ComponentRegistry({("not_yet", "ffn"): 0.1, (user_layer, "ffn"): 0.9})
    assert registry.overrides()[("not_yet", "ffn")] == 0.1
    assert registry.score(user_layer, "ffn") == 0.9


@pytest.mark.parametrize(
    "first,second,score,argument",
    [
        ("nope", "ffn", 0.5, "first"),
        ("ffn", "nope", 0.5, "second"),
        ("ffn", "ffn", 1.5, "score"),
        ("ffn", "ffn", -0.1, "score"),
        ("ffn", "ffn", math.nan, "score"),
    ],
)
def test_set_score_rejects_bad_arguments_by_name(registry, first, second, score, argument):
    with pytest.raises(ValueError, match=argument):
        registry.set_score(first, second, score)


def test_registry_rejects_bad_overrides_and_json():
    with pytest.raises(ValueError, match="overrides"):
        ComponentRegistry({("ffn", "ffn"): 2.0})
    with pytest.raises(ValueError, match="overrides"):
        ComponentRegistry({"ffn": 0.5})
    for text in ("not json", "{}", '{"overrides": [["ffn", "ffn"]]}'):
        with pytest.raises(ValueError, match="text"):
            ComponentRegistry.from_json(text)


def test_pattern_score_is_the_mean_of_consecutive_scores(registry):
    assert registry.pattern_score(["mamba", "ffn", "attention"]) == pytest.approx((0.8 + 0.8) / 2)
    assert registry.pattern_score(["ffn", "ffn", "ffn", "attention"]) == pytest.approx(1.2 / 3)
    assert registry.pattern_score(["mamba"]) == NEUTRAL_SCORE
    with pytest.raises(ValueError, match="unknown layer"):
        registry.pattern_score(["mamba", "nope"])


# ---------------------------------------------------------------------- strategies
def make(strategy, registry, seed):
    """One architecture of ``strategy`` with fixed inputs."""
    parent = Architecture(("mamba", "attention", "ffn", "rwkv"), 32, {"rwkv_head_size": 16})
    other = Architecture(
        ("gla", "kan", "conv"),
        64,
        {"gla_num_heads": 2},
        {"class_name": "Random", "args": {"units": 64, "sparsity_level": 0.5}},
    )
    if strategy == "greedy":
        return greedy(registry, "conv", 5, 32, seed)
    if strategy == "random":
        return random_walk(registry, 5, 1.0, 32, seed)
    if strategy == "mutate":
        return mutate(parent, registry, 0.5, seed)
    return crossover(parent, other, seed, registry)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_is_reproducible_and_varies_with_the_seed(registry, strategy):
    assert (
        make(strategy, registry, 7).canonical_json() == make(strategy, registry, 7).canonical_json()
    )
    keys = {make(strategy, registry, seed).key() for seed in range(8)}
    assert len(keys) >= 3


def test_greedy_appends_the_most_compatible_layer(registry):
    for seed in range(10):
        architecture = greedy(registry, "attention", 6, seed=seed)
        assert architecture.pattern[0] == "attention" and len(architecture.pattern) == 6
        assert follows_best(registry, architecture.pattern)
    registry.set_score("attention", "kan", 1.0)
    assert {greedy(registry, "attention", 2, seed=s).pattern for s in range(5)} == {
        ("attention", "kan")
    }


def test_greedy_keeps_given_options_and_wiring_and_fits_defaults(registry):
    spec = registry.wiring_specs(32)[2]
    architecture = greedy(registry, "rwkv", 3, 32, options={"ffn_hidden_size": 48}, wiring=spec)
    assert architecture.wiring == spec
    assert 32 % architecture.options["rwkv_head_size"] == 0  # the default 64 does not fit
    assert architecture.param_count(8) > 0
    assert greedy(registry, "ffn", 1, options={"ffn_hidden_size": 48}).options == {
        "ffn_hidden_size": 48
    }
    assert greedy(registry, "mamba", 1, options={"ffn_hidden_size": 48}).options == {}


def cycle_registry():
    """Scores with one best successor each: attention -> kan -> mamba -> attention."""
    registry = ComponentRegistry()
    for first, second in (("attention", "kan"), ("kan", "mamba"), ("mamba", "attention")):
        registry.set_score(first, second, 1.0)
    return registry


def test_random_walk_at_a_tiny_temperature_is_greedy():
    registry = cycle_registry()
    expected = greedy(registry, "attention", 7).pattern
    assert expected == ("attention", "kan", "mamba") * 2 + ("attention",)
    for seed in range(5):
        walk = random_walk(registry, 7, temperature=1e-3, seed=seed, start="attention")
        assert walk.pattern == expected
        ties = random_walk(ComponentRegistry(), 7, temperature=1e-3, seed=seed)
        assert follows_best(ComponentRegistry(), ties.pattern)


def test_random_walk_at_a_huge_temperature_is_uniform(registry):
    walk = random_walk(registry, 3001, temperature=1e6, seed=0).pattern
    counts = Counter(walk[1:])
    assert set(counts) == set(EVERY_LAYER)
    for layer in EVERY_LAYER:  # binomial(3000, 0.1): sd 0.0055
        assert abs(counts[layer] / 3000 - 0.1) < 0.025


def test_random_walk_transitions_follow_the_softmax_of_the_scores(registry):
    temperature, walk = 0.2, random_walk(registry, 6001, temperature=0.2, seed=1).pattern
    for previous in ("ffn", "attention"):
        nexts = Counter(b for a, b in zip(walk[:-1], walk[1:], strict=True) if a == previous)
        total = sum(nexts.values())
        weights = {b: math.exp(registry.score(previous, b) / temperature) for b in EVERY_LAYER}
        for layer in EVERY_LAYER:
            expected = weights[layer] / sum(weights.values())
            assert abs(nexts[layer] / total - expected) < 4 * math.sqrt(0.25 / total)


def test_random_walk_draws_options_and_wirings_from_the_candidates(registry):
    walks = [random_walk(registry, 4, hidden_size=16, seed=seed) for seed in range(40)]
    wirings = {None if w.wiring is None else w.wiring["class_name"] for w in walks}
    assert wirings == {None, *registry.wirings()}
    for walk in walks:
        for option, value in walk.options.items():
            assert value in registry.valid_values(option, 16)


def test_mutate_at_rate_0_is_the_identity(registry):
    for seed in range(10):
        architecture = random_walk(registry, 5, seed=seed)
        assert mutate(architecture, registry, 0.0, seed=seed) == architecture


def test_mutate_at_rate_1_replaces_every_layer_and_the_wiring(registry):
    for seed in range(10):
        architecture = random_walk(registry, 5, seed=seed)
        child = mutate(architecture, registry, 1.0, seed=seed)
        assert all(a != b for a, b in zip(architecture.pattern, child.pattern, strict=True))
        assert child.wiring != architecture.wiring
        assert child.hidden_size == architecture.hidden_size


def test_mutated_layers_are_drawn_by_compatibility_with_their_neighbours():
    registry = ComponentRegistry()
    for first in EVERY_LAYER:  # only kan may precede mamba
        registry.set_score(first, "mamba", 1.0 if first == "kan" else 0.0)
    for seed in range(10):
        child = mutate(Architecture(("ffn", "mamba"), 16), registry, 1.0, seed=seed)
        assert child.pattern[0] == "kan"


def is_one_point_child(child, first, second) -> bool:
    for head, tail in ((first, second), (second, first)):
        for i in range(1, len(head) + 1):
            if any(child == head[:i] + tail[j:] for j in range(len(tail))):
                return True
    return False


def test_crossover_joins_a_prefix_of_one_parent_to_a_suffix_of_the_other(registry):
    first = Architecture(("mamba", "ffn", "attention", "kan"), 32, {"mamba_state_size": 8})
    second = Architecture(
        ("conv", "gla", "rwkv"), 64, {"gla_num_heads": 2}, registry.wiring_specs(64)[1]
    )
    children = [crossover(first, second, seed) for seed in range(40)]
    for child in children:
        assert set(child.pattern) <= set(first.pattern) | set(second.pattern)
        assert is_one_point_child(child.pattern, first.pattern, second.pattern)
        parent = first if child.hidden_size == 32 else second
        assert child.wiring == parent.wiring  # width and wiring from one parent
        assert child.options.get("mamba_state_size", 8) == 8
        assert child.options.get("gla_num_heads", 2) in (2, 4)
        assert child.param_count(8) > 0
    assert {child.pattern[0] for child in children} == {"mamba", "conv"}  # both orders
    assert {child.hidden_size for child in children} == {32, 64}


def test_crossover_fits_inherited_options_to_the_width(registry):
    wide = Architecture(("rwkv", "rwkv"), 64, {"rwkv_head_size": 64})
    narrow = Architecture(("attention", "attention"), 16, {"attention_num_heads": 4})
    children = [crossover(wide, narrow, seed) for seed in range(30)]
    narrow_rwkv = [c for c in children if c.hidden_size == 16 and "rwkv" in c.pattern]
    assert narrow_rwkv
    for child in narrow_rwkv:
        assert 16 % child.options["rwkv_head_size"] == 0
        child.build(8)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_propose_returns_distinct_buildable_architectures(registry, strategy):
    for seed in range(50):
        width = WIDTHS[seed % len(WIDTHS)]
        proposals = propose(registry, strategy, 3, seed, hidden_size=width, length=3)
        assert len(proposals) == 3
        assert len({p.key() for p in proposals}) == 3
        for proposal in proposals:
            assert proposal.param_count(8) > 0
        if seed % 10 == 0:
            model = proposals[0].build(8)
            assert parameter_count(model) == proposals[0].param_count(8)


@pytest.mark.parametrize("strategy", ["mutate", "crossover"])
def test_propose_derives_new_architectures_from_the_parents(registry, strategy):
    parents = [random_walk(registry, 4, hidden_size=32, seed=seed) for seed in range(3)]
    proposals = propose(registry, strategy, 6, 0, parents=parents)
    assert len(proposals) == 6
    assert not {p.key() for p in proposals} & {p.key() for p in parents}
    layers = {layer for parent in parents for layer in parent.pattern}
    if strategy == "crossover":
        assert all(set(p.pattern) <= layers for p in proposals)
    assert propose(registry, strategy, 6, 0, parents=parents) == proposals


def test_propose_returns_fewer_when_the_space_is_exhausted(registry):
    assert len(propose(registry, "greedy", 20, 0, length=1)) == len(EVERY_LAYER)
    parent = random_walk(registry, 3, seed=0)
    assert propose(registry, "mutate", 3, 0, rate=0.0, parents=[parent]) == []


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda r: greedy(r, "nope", 3), "start"),
        (lambda r: greedy(r, "ffn", 0), "length"),
        (lambda r: greedy(r, "ffn", 3, hidden_size=12), "hidden_size"),
        (lambda r: greedy(r, "ffn", 3, options={"attention_num_heads": 3}), "options"),
        (lambda r: greedy(r, "ffn", 3, options={"gla_num_heads": 0}), "options"),
        (lambda r: greedy(r, "ffn", 3, options={"nope": 3}), "unknown options"),
        (lambda r: random_walk(r, 3, temperature=0.0), "temperature"),
        (lambda r: random_walk(r, 3, temperature=-1.0), "temperature"),
        (lambda r: random_walk(r, 3, temperature=math.inf), "temperature"),
        (lambda r: random_walk(r, 3, start="nope"), "start"),
        (lambda r: mutate(Architecture(("ffn",), 16), r, rate=1.5), "rate"),
        (lambda r: mutate(Architecture(("ffn",), 12), r), "hidden_size"),
        (lambda r: propose(r, "nope", 3, 0), "strategy"),
        (lambda r: propose(r, "random", -1, 0), "count"),
        (lambda r: propose(r, "mutate", 1, 0, parents=[Architecture(("ffn",), 12)]), "parents"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(registry, call, argument):
    with pytest.raises(ValueError, match=argument):
        call(registry)


def test_seeds_may_be_numpy_generators(registry):
    first = random_walk(registry, 4, seed=np.random.default_rng(5))
    assert first == random_walk(registry, 4, seed=np.random.default_rng(5))


def test_the_registry_lists_every_public_wiring_class_with_its_options():
    from ncps_mlx.wirings.gallery import example_wirings

    classes = ComponentRegistry.wiring_classes()
    assert set(classes) == set(example_wirings())
    assert classes["AutoNCP"] == {
        "units": inspect.Parameter.empty,
        "output_size": inspect.Parameter.empty,
        "sparsity_level": 0.5,
        "seed": 22222,
    }
    assert set(ComponentRegistry().wirings()) <= set(classes)
