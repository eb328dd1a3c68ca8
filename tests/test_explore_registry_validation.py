"""``ComponentRegistry.fits`` asks the layers, through the builder, instead of restating rules.

An option value fits a width exactly when the layers that read the option build with it
(``HybridBuilder.build`` succeeds); a user layer's own constraints count without any table.
"""

import mlx.core as mx
import pytest
from model_helpers import ElementwiseLayer

from ncps_mlx.explore import ComponentRegistry
from ncps_mlx.explore.registry import OPTION_CANDIDATES
from ncps_mlx.hybrid import HybridBuilder

WIDTHS = (8, 16, 64)
CONTEXTS = ({}, {"attention_head_dim": 8, "gla_head_dim": 4, "liquid_features": 24})


def builds(option, value, width, context) -> bool:
    readers = [
        n for n in HybridBuilder.layer_types() if option in HybridBuilder._registry[n].options
    ]
    try:
        HybridBuilder.build(readers, 3, width, **{**context, option: value})
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("option", sorted(OPTION_CANDIDATES))
@pytest.mark.parametrize("context", CONTEXTS, ids=["alone", "with_head_dims"])
def test_a_candidate_fits_exactly_when_the_layers_reading_it_build(option, context):
    registry = ComponentRegistry()
    for width in WIDTHS:
        for value in (*OPTION_CANDIDATES[option](width), 0, 3, 5):
            expected = builds(option, value, width, context)
            assert registry.fits(option, value, width, context) == expected, (option, value, width)


def test_valid_values_are_the_candidates_that_build():
    registry = ComponentRegistry()
    assert registry.valid_values("attention_num_heads", 8) == (1, 2, 4)  # head sizes 8, 4, 2
    assert registry.valid_values("attention_num_heads", 8, {"attention_head_dim": 3}) == ()
    assert registry.valid_values("rwkv_head_size", 16) == (8, 16)
    assert registry.valid_values("liquid_units", 64, {"liquid_features": 24}) == (32,)


class Even(ElementwiseLayer):
    """A user layer that only exists at even widths with an even ``size``."""

    def __init__(self, d_model, wiring=None, size=2):
        super().__init__()
        if d_model % size:
            raise ValueError(f"d_model ({d_model}) must be a multiple of size ({size})")
        self.weight = mx.ones((d_model,))


def test_a_user_layers_own_rules_decide_what_fits():
    HybridBuilder.register("even", "E", Even, {"even_size": "size"})
    try:
        registry = ComponentRegistry()
        assert registry.fits("even_size", 4, 16) and not registry.fits("even_size", 3, 16)
        with pytest.raises(ValueError, match=r"even layer: hidden_size \(16\) .* even_size \(3\)"):
            HybridBuilder.build(["even"], 2, 16, even_size=3)
    finally:
        HybridBuilder._registry.pop("even")
