"""Architecture: validation, canonical form (dedup keys), JSON round trip, building."""

import pytest
from mlx.utils import tree_flatten

from ncps_mlx.explore import Architecture, option_defaults
from ncps_mlx.wirings import AdaptiveWiring, AutoNCP, Random, Wiring


def test_option_defaults_come_from_the_layer_signatures():
    assert option_defaults("attention") == {
        "attention_num_heads": 4,
        "attention_head_dim": None,
        "attention_window_size": None,
    }
    assert option_defaults("mamba")["mamba_state_size"] == 16


@pytest.mark.parametrize(
    "first,second",
    [
        # options no layer reads, and options equal to the defaults, are dropped
        (
            Architecture(("mamba", "ffn"), 32, {"gla_num_heads": 2}),
            Architecture(("mamba", "ffn"), 32),
        ),
        (
            Architecture(("attention", "ffn"), 32, {"attention_num_heads": 4}),
            Architecture(("attention", "ffn"), 32),
        ),
        # whole floats are ints; lists and tuples are the same
        (
            Architecture(["mamba", "ffn"], 32, {"mamba_state_size": 8.0}),
            Architecture(("mamba", "ffn"), 32, {"mamba_state_size": 8}),
        ),
        # sharing a layer used once changes nothing
        (Architecture(("mamba", "ffn"), 32, shared=("ffn",)), Architecture(("mamba", "ffn"), 32)),
        # a Wiring and its spec
        (
            Architecture(("ffn",), 32, wiring=AutoNCP(32, 8)),
            Architecture(("ffn",), 32, wiring=AutoNCP(32, 8).spec()),
        ),
    ],
)
def test_equivalent_descriptions_have_one_canonical_form_and_key(first, second):
    assert first.canonical_json() == second.canonical_json()
    assert first.key() == second.key() and first == second and hash(first) == hash(second)


@pytest.mark.parametrize(
    "other",
    [
        Architecture(("ffn", "mamba"), 32),
        Architecture(("mamba", "ffn"), 16),
        Architecture(("mamba", "ffn"), 32, {"mamba_state_size": 8}),
        Architecture(("mamba", "ffn"), 32, wiring=AutoNCP(32, 8)),
        Architecture(("mamba", "ffn"), 32, wiring=AutoNCP(32, 8, seed=1)),
    ],
)
def test_different_architectures_have_different_keys(other):
    assert Architecture(("mamba", "ffn"), 32).key() != other.key()


def test_json_round_trip_and_a_readable_description():
    wiring = AdaptiveWiring(Random(32, sparsity_level=0.5), prune_fraction=0.2)
    architecture = Architecture(
        ("mamba", "attention", "mamba", "attention"),
        32,
        {"attention_num_heads": 2},
        wiring,
        shared=("attention",),
    )
    assert Architecture.from_json(architecture.canonical_json()) == architecture
    assert architecture.describe() == (
        "M → A → M → A H=32 attention_num_heads=2 wiring=AdaptiveWiring shared=attention"
    )


def test_build_and_param_count_agree_and_the_wiring_masks_the_projections():
    architecture = Architecture(
        ("mamba", "attention", "ffn"), 32, {"mamba_state_size": 8}, AutoNCP(32, 8)
    )
    model = architecture.build(8)
    assert architecture.param_count(8) == sum(v.size for _, v in tree_flatten(model.parameters()))
    assert model.layers[2].up.density < 1.0
    dense = Architecture(("mamba", "attention", "ffn"), 32, {"mamba_state_size": 8}).build(8)
    assert dense.layers[2].up.density == 1.0


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"pattern": ()}, ValueError, "pattern"),
        ({"pattern": "mamba"}, ValueError, "pattern"),
        ({"pattern": ("mambo",)}, ValueError, "unknown layer types"),
        ({"pattern": ("ffn",), "hidden_size": 0}, ValueError, "hidden_size"),
        ({"pattern": ("ffn",), "options": {"heads": 2}}, ValueError, "unknown options"),
        ({"pattern": ("ffn",), "options": {"wiring": None}}, ValueError, "spec"),
        ({"pattern": ("ffn",), "options": [1]}, TypeError, "options"),
        ({"pattern": ("ffn",), "wiring": {"class_name": "Nope", "args": {}}}, ValueError, "Nope"),
        ({"pattern": ("ffn",), "shared": "ffn"}, ValueError, "shared"),
    ],
)
def test_bad_descriptions_raise_naming_the_problem(kwargs, error, match):
    with pytest.raises(error, match=match):
        Architecture(**kwargs)


@pytest.mark.parametrize(
    "text,match", [("{", "not an architecture"), ('{"layers": []}', "keys"), ("[1]", "dict")]
)
def test_from_json_rejects_foreign_documents(text, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Architecture.from_json(text)


def test_wiring_spec_round_trip_replays_the_draws():
    wiring = AutoNCP(20, 4, seed=5)
    again = Wiring.from_spec(wiring.spec())
    wiring.build(6)
    again.build(6)
    assert (wiring.adjacency_matrix == again.adjacency_matrix).all()
    with pytest.raises(ValueError, match="spec"):
        Wiring.from_spec({"class_name": "AutoNCP"})
    with pytest.raises(ValueError, match="do not fit"):
        Wiring.from_spec({"class_name": "AutoNCP", "args": {"units": 20}})
