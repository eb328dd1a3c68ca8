"""The builder's ``wiring`` option: it reaches every layer type, and a resampled wiring says so.

A wiring whose ``units`` differ from ``hidden_size`` is stretched over the projections
(:func:`wiring_mask`); ``build`` and ``param_count`` then warn once, ``"wiring resampled from N
to M units"``, with :class:`WiringResampledWarning`. A single wiring masks the projections of
every layer type (liquid layers' input and output projections included), so a model built with
one differs from the dense model of the same seed.
"""

import warnings

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from ncps_mlx.hybrid import HybridBuilder, WiredLinear, WiringResampledWarning, wiring_mask
from ncps_mlx.wirings import NCP, AutoNCP

E, H = 6, 32
SMALL = {"rwkv_head_size": 16, "gla_num_heads": 2, "attention_num_heads": 2, "liquid_features": 4}
EVERY_LAYER = HybridBuilder.layer_types()


def ncp22():
    """The issue's wiring: an NCP of 22 neurons, built for 8 inputs."""
    wiring = NCP(10, 8, 4, 4, 4, 4, 4, seed=1)
    wiring.build(8)
    return wiring


def resample_warnings(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function()
    return result, [w for w in caught if issubclass(w.category, WiringResampledWarning)]


def wired(model):
    return [
        m for _, m in model.named_modules() if isinstance(m, WiredLinear) and m._mask is not None
    ]


def test_a_wiring_of_another_width_warns_once_from_n_to_m_units():
    assert ncp22().units == 22
    for method in (HybridBuilder.build, HybridBuilder.param_count):
        _, caught = resample_warnings(
            lambda method=method: method(["mamba", "attention", "ffn"], E, H, wiring=ncp22())
        )
        assert len(caught) == 1
        assert str(caught[0].message) == (
            "wiring resampled from 22 to 32 units (hidden_size) to mask the projections of "
            "mamba, attention, ffn"
        )
        assert caught[0].message.units == 22 and caught[0].filename == __file__


def test_each_wiring_size_of_a_dict_warns_once_naming_its_layers():
    forty = AutoNCP(40, 8, seed=2)
    forty.build(H)
    wiring = {"mamba": ncp22(), "ffn": ncp22(), "attention": forty}
    _, caught = resample_warnings(
        lambda: HybridBuilder.build(["mamba", "attention", "ffn"], E, H, wiring=wiring)
    )
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "wiring resampled from 22 to 32 units (hidden_size) to mask the projections of mamba, ffn",
        "wiring resampled from 40 to 32 units (hidden_size) to mask the projections of attention",
    ]


def test_a_wiring_of_the_model_width_is_used_as_is_without_a_warning():
    wiring = AutoNCP(H, 8, seed=3)
    wiring.build(H)
    model, caught = resample_warnings(
        lambda: HybridBuilder.build(["mamba", "ffn", "cfc"], E, H, wiring=wiring, **SMALL)
    )
    assert caught == [] and wired(model)


def test_wiring_mask_warns_with_the_projection_it_stretched_to():
    wiring = ncp22()
    mask, caught = resample_warnings(lambda: wiring_mask(wiring, 64, 16))
    assert mask.shape == (16, 64) and len(caught) == 1
    assert str(caught[0].message).startswith("wiring resampled from 22 to 64 -> 16 units")
    assert caught[0].message.shape == (64, 16)
    _, caught = resample_warnings(lambda: wiring_mask(wiring, 22, 44))  # its own width: as is
    assert caught == []
    assert issubclass(WiringResampledWarning, UserWarning)


@pytest.mark.parametrize("layer", EVERY_LAYER)
def test_a_single_wiring_masks_every_layer_type_and_changes_its_output(layer):
    x = mx.random.normal((2, 4, E), key=mx.random.key(7))

    def build(**wiring):
        mx.random.seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WiringResampledWarning)
            return HybridBuilder.build([layer], E, H, **SMALL, **wiring)

    dense, masked = build(), build(wiring=ncp22())
    projections = wired(masked)
    assert projections and min(p.density for p in projections) < 1.0
    for projection in projections:  # masked weights are zero: the mask is in force
        assert not (projection.weight * (1 - projection._mask)).any().item()
    assert not np.allclose(np.array(dense(x)[0]), np.array(masked(x)[0]), atol=1e-4)
    # the parameter count includes masked weights: the same number with and without the wiring
    count = sum(a.size for _, a in tree_flatten(masked.parameters()))
    assert count == sum(a.size for _, a in tree_flatten(dense.parameters()))


@pytest.mark.parametrize("layer", ["cfc", "ltc"])
def test_a_liquid_layer_takes_its_circuit_from_a_dict_and_its_features_from_the_wiring(layer):
    circuit = ncp22()  # built for 8 inputs: the layer's liquid_features default to 8
    model, caught = resample_warnings(
        lambda: HybridBuilder.build([layer], E, H, wiring={layer: circuit})
    )
    assert caught == []  # a circuit is not resampled
    liquid = model.layers[0]
    assert liquid.rnn.state_size == 22 and liquid.input_projection.out_features == 8
    assert wired(model) == []  # its projections stay dense
    with pytest.raises(
        ValueError,
        match=rf"{layer} layer: liquid_features \(6\) must be the wiring's input_dim \(8\)",
    ):
        HybridBuilder.build([layer], E, H, wiring={layer: ncp22()}, liquid_features=6)
