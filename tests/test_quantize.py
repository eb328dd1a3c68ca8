"""Quantised inference and dtype casting: ``quantize``, ``astype``, ``weight_bytes``.

Errors are relative to float32 in the Frobenius norm, ``||y - y_32|| / ||y_32||``, over a whole
output sequence. The bounds below are about twice the errors measured on these models (random
weights, 16 steps; recurrence lets the error of each step feed the next):

=========  =======  ===================================================================
variant    bound    measured
=========  =======  ===================================================================
8-bit      2e-2     dense CfC 9e-3, wired CfC 6e-3, LTC 1e-3, hybrid 4e-3
4-bit      3e-1     dense CfC 1.4e-1, wired CfC 1e-1, LTC 2e-2, hybrid 7e-2
float16    1.5e-2   4e-4 to 4e-3; LTC with fast weights 7e-3
bfloat16   7e-2     5e-3 to 2e-2; LTC with fast weights 3e-2
=========  =======  ===================================================================

Weight memory is checked exactly: a quantized ``(out, in)`` layer stores ``out * in * bits / 8``
bytes of weights plus a float32 scale and bias per group of ``group_size`` inputs, i.e. a
factor ``(bits / 8 + 8 / group_size) / 4`` of its float32 weight; every other parameter keeps
its size.
"""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from ncps_mlx import LTC, NCP, AutoNCP, CfC
from ncps_mlx.hybrid import HybridBuilder, QuantizedWiredLinear
from ncps_mlx.hybrid.models.seq2seq import LiquidSeq2Seq
from ncps_mlx.quantization import QuantizationReport, astype, quantize, weight_bytes
from ncps_mlx.wirings import DynamicRoutingWiring, MetaWiring, MultiScaleWiring

QUANTIZED_TOLERANCE = {8: 2e-2, 4: 3e-1}
DTYPE_TOLERANCE = {mx.float16: 1.5e-2, mx.bfloat16: 7e-2}
GROUP = 32  # the smallest affine group: the test models' layers are 32 to 256 wide
F, B, T = 32, 3, 16
ON_CUDA = hasattr(mx, "cuda") and mx.cuda.is_available() and mx.default_device() == mx.gpu


def built(wiring, input_dim):
    wiring.build(input_dim)
    return wiring


MODELS = {
    "cfc-dense": lambda: CfC(F, 32, proj_size=32, backbone_units=128, backbone_layers=2),
    "cfc-wired": lambda: CfC(F, NCP(32, 32, 32, 8, 8, 8, 8, seed=1)),
    "ltc-mixed": lambda: LTC(F, AutoNCP(64, 8, seed=1), mixed_memory=True),
    "hybrid": lambda: HybridBuilder.build(
        ["mamba", "attention", "gla", "ffn"],
        embed_size=F,
        hidden_size=64,
        wiring=built(AutoNCP(64, 16, seed=3), 64),
    ),
}
LIQUID = ["cfc-dense", "cfc-wired", "ltc-mixed"]


def make(name: str):
    mx.random.seed(0)
    return MODELS[name]()


def relative_error(y, reference) -> float:
    y, reference = (np.array(a.astype(mx.float32)) for a in (y, reference))
    return float(np.linalg.norm(y - reference) / np.linalg.norm(reference))


@pytest.fixture(scope="module")
def x():
    return mx.random.normal((B, T, F), key=mx.random.key(1))


# ---------------------------------------------------------------------------------- quantize
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("name", list(MODELS))
def test_quantized_outputs_stay_within_the_stated_tolerance_of_float32(name, bits, x):
    model = make(name)
    reference = model(x)[0]
    report = quantize(model, bits=bits, group_size=GROUP)
    assert report.quantized
    y = model(x)[0]
    assert y.dtype == mx.float32 and y.shape == reference.shape
    assert relative_error(y, reference) < QUANTIZED_TOLERANCE[bits]


@pytest.mark.parametrize("bits,group_size", [(8, 32), (4, 32), (4, 64), (2, 128)])
@pytest.mark.parametrize("name", list(MODELS))
def test_weight_memory_shrinks_by_the_expected_factor(name, bits, group_size):
    model = make(name)
    float_parameters = dict(tree_flatten(model.parameters()))
    report = quantize(model, bits=bits, group_size=group_size)
    expected = sum(a.nbytes for a in float_parameters.values())
    for path in report.quantized:
        out_features, in_features = float_parameters[f"{path}.weight"].shape
        groups = out_features * in_features // group_size
        expected += out_features * in_features * bits // 8 + 2 * 4 * groups
        expected -= out_features * in_features * 4
    assert weight_bytes(model) == report.bytes_after == expected
    assert report.bytes_before == sum(a.nbytes for a in float_parameters.values())
    assert report.ratio == pytest.approx(expected / report.bytes_before)


def test_every_projection_of_a_wide_enough_model_is_quantized_and_shrinks_to_bits_over_32():
    model = make("cfc-dense")  # every layer reads at least 32 features: all are quantized
    floats = sum(a.size for path, a in tree_flatten(model.parameters()) if path.endswith("weight"))
    report = quantize(model, bits=4, group_size=32)
    assert sorted(report.quantized) == [
        "fc",
        "rnn_cell.backbone.0",
        "rnn_cell.backbone.1",
        "rnn_cell.ff1",
        "rnn_cell.ff2",
        "rnn_cell.time_a",
        "rnn_cell.time_b",
    ]
    assert report.skipped == {}
    weights = sum(
        a.nbytes for path, a in tree_flatten(model.parameters()) if path.endswith("weight")
    )
    assert weights == floats * 4 * 4 // 32  # the packed weights alone: 4 of 32 bits


def test_wiring_masks_are_preserved_by_quantization():
    model = make("hybrid")
    quantize(model, bits=4, group_size=GROUP)
    layers = [
        m for m in model.modules() if isinstance(m, QuantizedWiredLinear) and m._mask is not None
    ]
    assert len(layers) == 14  # every masked projection but the two narrow ones (Mamba's x_proj
    for layer in layers:  # is unmasked)
        mask = np.array(layer._mask)
        assert mask.dtype == bool and not mask.all()
        assert np.all(np.array(layer.dequantized_weight())[~mask] == 0)
        raw = mx.dequantize(layer.weight, layer.scales, layer.biases, layer.group_size, layer.bits)
        assert np.abs(np.array(raw)[~mask]).max() <= 1e-6 * np.abs(np.array(raw)).max()


def test_a_quantized_wired_cfc_keeps_its_sparse_heads():
    model = make("cfc-wired")
    quantize(model, bits=4, group_size=GROUP)
    for cell in model.rnn_cell.layers:
        assert isinstance(cell.ff1, nn.QuantizedLinear)
        fused = np.array(cell._head_weights()[0])
        hidden = cell.hidden_size
        mask = np.array(cell._sparsity_mask)
        for head in (fused[:hidden], fused[hidden : 2 * hidden]):  # ff1, ff2
            assert np.all(head[mask == 0] == 0) and np.any(head[mask == 1] != 0)


def test_ltc_synapse_parameters_stay_float_and_only_the_memory_cell_is_quantized(x):
    model = make("ltc-mixed")
    cell_parameters = dict(tree_flatten(model.rnn_cell.parameters()))
    report = quantize(model, bits=8, group_size=GROUP)
    assert sorted(report.quantized) == ["lstm.input_map", "lstm.recurrent_map"]
    for path, value in tree_flatten(model.rnn_cell.parameters()):
        assert value.dtype == mx.float32
        np.testing.assert_array_equal(np.array(value), np.array(cell_parameters[path]))


def test_layers_whose_input_is_not_a_multiple_of_the_group_size_are_reported_and_left_float():
    model = make("hybrid")
    report = quantize(model, bits=8, group_size=GROUP)
    assert report.skipped == {
        "layers.0.dt_proj": "input dimension 4 is not a multiple of 32",
        "layers.2.alpha_up": "input dimension 16 is not a multiple of 32",
    }
    assert model.layers[0].dt_proj.weight.dtype == mx.float32
    assert "16 layers quantized, 2 skipped" in str(report)


def test_the_default_is_8_bit_affine_with_groups_of_64():
    report = quantize(make("cfc-dense"))
    assert (report.bits, report.group_size, report.mode) == (8, 64, "affine")
    assert "fc" in report.skipped  # fc reads 32 features


def test_quantizing_twice_is_idempotent(x):
    model = make("cfc-dense")
    quantize(model, bits=4, group_size=GROUP)
    once = model(x)[0]
    again = quantize(model, bits=4, group_size=GROUP)
    assert again.quantized == ()
    assert again.skipped["rnn_cell.ff1"] == "already quantized (4 bits, group size 32)"
    assert again.bytes_before == again.bytes_after
    np.testing.assert_array_equal(np.array(model(x)[0]), np.array(once))


def test_a_seq2seq_model_is_quantized_embeddings_included():
    mx.random.seed(0)
    model = LiquidSeq2Seq(F, 64, d_model=64, num_layers=1, encoder_units=32)
    source = mx.random.normal((B, T, F), key=mx.random.key(2))
    target = mx.random.randint(0, 64, (B, 8), key=mx.random.key(3))
    reference = model(source, target)
    report = quantize(model, bits=8, group_size=GROUP)
    assert isinstance(model.target_embedding, nn.QuantizedEmbedding)
    assert "output_projection" in report.quantized
    assert relative_error(model(source, target), reference) < QUANTIZED_TOLERANCE[8]


def test_floating_point_modes_use_their_own_group_sizes(x):
    model = make("cfc-dense")
    reference = model(x)[0]
    report = quantize(model, mode="mxfp8")
    assert (report.bits, report.group_size) == (8, 32)
    assert relative_error(model(x)[0], reference) < 1.5e-1  # fp8 (e4m3): measured 6e-2


@pytest.mark.parametrize(
    "suffix",
    [
        ".safetensors",
        pytest.param(
            ".npz",
            marks=pytest.mark.skipif(
                ON_CUDA,
                reason="MLX 0.32 loads an (N, 1) array (fc's scales: one group per row) back "
                "from .npz with strides (1, N); this model reloaded from .npz failed in CUDA's "
                "quantized_matmul on an H200 ('No implementation for problem shape')",
            ),
        ),
    ],
)
def test_a_quantized_model_saves_and_loads_into_a_quantized_twin(tmp_path, x, suffix):
    model = make("cfc-dense")
    quantize(model, bits=4, group_size=GROUP)  # fc reads 32 features: one group per row
    model.save_weights(str(tmp_path / f"weights{suffix}"))
    twin = CfC(F, 32, proj_size=32, backbone_units=128, backbone_layers=2)
    quantize(twin, bits=4, group_size=GROUP)
    twin.load_weights(str(tmp_path / f"weights{suffix}"))
    np.testing.assert_array_equal(np.array(twin(x)[0]), np.array(model(x)[0]))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"bits": 7}, ValueError, "bits"),
        ({"bits": True}, ValueError, "bits"),
        ({"group_size": 48}, ValueError, "group_size"),
        ({"mode": "int4"}, ValueError, "mode"),
        ({"mode": "mxfp4", "bits": 8}, ValueError, "bits"),
        ({"mode": "nvfp4", "group_size": 32}, ValueError, "group_size"),
    ],
)
def test_bad_quantization_arguments_name_the_argument(kwargs, error, match):
    model = make("cfc-dense")
    with pytest.raises(error, match=match):
        quantize(model, **kwargs)
    assert not any(isinstance(m, nn.QuantizedLinear) for m in model.modules())


def test_quantize_needs_a_module():
    with pytest.raises(TypeError, match="model"):
        quantize({"weight": mx.zeros((4, 32))})


def test_the_report_is_a_summary_of_layers_and_bytes():
    report = QuantizationReport(4, 32, "affine", ("a",), {"b": "why"}, 1000, 250)
    assert report.ratio == 0.25
    assert str(report) == (
        "affine 4-bit, group size 32: 1 layers quantized, 1 skipped\n"
        "weights: 1,000 -> 250 bytes (0.250x)\n"
        "  skipped b: why"
    )


# ---------------------------------------------------------------------------------- astype
DTYPE_MODELS = {
    **{name: MODELS[name] for name in LIQUID},
    "ltc-sparse": lambda: LTC(F, AutoNCP(48, 4, seed=2), sparse=True),
    "ltc-fast-weights": lambda: LTC(F, MetaWiring(12, 8, 2, seed=3)),
    "ltc-routing": lambda: LTC(F, DynamicRoutingWiring(3, 2, num_input_capsules=4, seed=1)),
    "cfc-multiscale": lambda: CfC(F, MultiScaleWiring(7, 5, 4, 2, fan_in=3, seed=1)),
}


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("name", list(DTYPE_MODELS))
def test_liquid_models_compute_and_answer_in_the_cast_dtype(name, dtype, x):
    mx.random.seed(0)
    model = DTYPE_MODELS[name]()
    reference, _ = model(x, timespans=mx.full((B, T), 0.5))
    assert model.astype(dtype) is model
    assert {a.dtype for _, a in tree_flatten(model.parameters())} == {dtype}
    y, state = model(x, timespans=mx.full((B, T), 0.5))  # float32 inputs are cast
    for array in (y, *(state if isinstance(state, tuple) else (state,))):
        assert array.dtype == dtype
    assert relative_error(y, reference) < DTYPE_TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_hybrid_models_compute_and_answer_in_the_cast_dtype(dtype, x):
    model = make("hybrid")
    reference, _ = model(x)
    assert model.astype(dtype) is model
    y, _ = model(x)  # float32 inputs are cast to the model's dtype
    assert y.dtype == dtype
    assert relative_error(y, reference) < DTYPE_TOLERANCE[dtype]
    cache = model.make_cache(2, dtype)
    y_t, cache = model.step(x[:2, 0], cache)
    assert y_t.dtype == dtype and all(
        a.dtype == dtype for _, a in tree_flatten(cache) if isinstance(a, mx.array)
    )


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_seq2seq_models_cast_and_quantize(dtype):
    mx.random.seed(0)
    model = LiquidSeq2Seq(
        8, 12, d_model=32, num_heads=2, encoder_units=16, bidirectional=True, source_vocab_size=10
    )
    source = mx.array(np.random.default_rng(0).integers(0, 10, (3, 6)), dtype=mx.int32)
    target = mx.array(np.random.default_rng(1).integers(0, 12, (3, 5)), dtype=mx.int32)
    reference = model(source, target)
    tokens = model.generate(source, 10, max_length=5)
    quantized = LiquidSeq2Seq(
        8, 12, d_model=32, num_heads=2, encoder_units=16, bidirectional=True, source_vocab_size=10
    )
    quantized.update(model.parameters())
    report = quantize(quantized, bits=8, group_size=GROUP)
    assert report.quantized and weight_bytes(quantized) < 0.6 * weight_bytes(model)
    assert relative_error(quantized(source, target), reference) < QUANTIZED_TOLERANCE[8]
    assert model.astype(dtype) is model
    logits = model(source, target)
    assert logits.dtype == dtype
    assert relative_error(logits, reference) < DTYPE_TOLERANCE[dtype]
    assert model.generate(source, 10, max_length=5).shape == tokens.shape


def test_quantized_models_run_in_float16_with_float16_scales(x):
    model = make("cfc-dense")
    reference = model(x)[0]
    quantize(model, bits=8, group_size=GROUP)
    astype(model, mx.float16)
    assert model.rnn_cell.ff1.weight.dtype == mx.uint32
    assert model.rnn_cell.ff1.scales.dtype == mx.float16
    y = model(x)[0]
    assert y.dtype == mx.float16
    tolerance = QUANTIZED_TOLERANCE[8] + DTYPE_TOLERANCE[mx.float16]
    assert relative_error(y, reference) < tolerance


def test_masks_and_tables_are_cast_with_the_parameters():
    model = make("cfc-wired")
    astype(model, mx.bfloat16)
    assert model.rnn_cell.layer_0._sparsity_mask.dtype == mx.bfloat16
    sparse = LTC(F, AutoNCP(48, 4, seed=2), sparse=True)
    astype(sparse, mx.float16)
    assert sparse.rnn_cell._fan_in.valid.dtype == mx.float16
    assert sparse.rnn_cell._fan_in.sources.dtype == mx.int32  # indices are not floats


def test_casting_back_to_float32_gives_float32_outputs(x):
    model = make("cfc-dense")
    model.astype(mx.bfloat16).astype(mx.float32)
    assert model(x)[0].dtype == mx.float32


@pytest.mark.parametrize(
    "dtype,error", [(mx.int32, ValueError), ("float16", TypeError), (np.float16, TypeError)]
)
def test_bad_dtypes_name_the_argument(dtype, error):
    with pytest.raises(error, match="dtype"):
        astype(make("cfc-dense"), dtype)
