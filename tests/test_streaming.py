"""StreamingRunner: chunks equal whole sequences; state, reset, errors; memory stays constant."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from ncps_mlx import LTC, CfC
from ncps_mlx.hybrid import (
    AttentionCache,
    CausalConvBlock,
    CausalSelfAttention,
    GatedLinearAttention,
    HybridBuilder,
    LiquidLayer,
    MambaBlock,
    RWKVBlock,
)
from ncps_mlx.streaming import StreamingRunner
from ncps_mlx.wirings import AutoNCP

F, B, T = 3, 2, 40
HYBRID_PATTERN = ["mamba", "attention", "gla", "rwkv", "conv", "ffn", "cfc"]
WITHOUT_ATTENTION = ["mamba", "gla", "rwkv", "conv", "cfc"]
HYBRID_OPTIONS = dict(
    mamba_state_size=4,
    attention_num_heads=2,
    attention_window_size=5,
    gla_num_heads=2,
    rwkv_head_size=8,
    conv_kernel_size=3,
    ffn_hidden_size=16,
    liquid_units=8,
    liquid_features=4,
)
LIQUID = {
    "cfc_dense": lambda: CfC(F, 8, backbone_units=8),
    "cfc_autoncp": lambda: CfC(F, AutoNCP(10, 2, seed=1)),
    "ltc": lambda: LTC(F, AutoNCP(8, 2, seed=2), ode_unfolds=3),
    "cfc_mixed_memory": lambda: CfC(F, AutoNCP(10, 2, seed=3), mixed_memory=True),
}
LAYERS = {
    "windowed_attention": lambda: CausalSelfAttention(8, 2, window_size=3),
    "mamba": lambda: MambaBlock(8, state_size=4, chunk_size=4),
    "gla": lambda: GatedLinearAttention(8, 2, chunk_size=4),
    "rwkv": lambda: RWKVBlock(8, head_size=4, chunk_size=4),
    "conv": lambda: CausalConvBlock(8, 3),
    "liquid": lambda: LiquidLayer(8, "cfc", units=8, features=4),
}


def seeded(build):
    mx.random.seed(0)
    return build()


def hybrid_model(pattern=HYBRID_PATTERN):
    return seeded(lambda: HybridBuilder.build(pattern, F, 16, **HYBRID_OPTIONS))


def chunk_bounds(total, longest, seed):
    """Random ``(start, stop)`` pairs of 1..longest steps covering ``0..total``."""
    rng = np.random.default_rng(seed)
    bounds, start = [], 0
    while start < total:
        stop = min(total, start + int(rng.integers(1, longest + 1)))
        bounds.append((start, stop))
        start = stop
    return bounds


def stream(runner, x, longest=9, seed=0, **per_step):
    """Feed ``x`` ``(B, T, F)`` in random chunks (slicing ``per_step`` arrays alike)."""
    outputs = []
    for start, stop in chunk_bounds(x.shape[-2], longest, seed):
        sliced = {name: a[..., start:stop] for name, a in per_step.items()}
        outputs.append(runner(x[..., start:stop, :], **sliced))
    return mx.concatenate(outputs, axis=-2)


def arrays(state):
    """The arrays of a liquid state or a hybrid cache, in order."""
    if state is None:
        return []
    if isinstance(state, mx.array):
        return [state]
    if isinstance(state, AttentionCache):
        return [state.keys, state.values]
    return [array for part in state for array in arrays(part)]


def assert_close(actual, expected, atol=1e-5):
    np.testing.assert_allclose(np.array(actual), np.array(expected), atol=atol)


def assert_same_state(actual, expected):
    actual, expected = arrays(actual), arrays(expected)
    assert [a.shape for a in actual] == [e.shape for e in expected]
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e)


# ---- chunked streams equal whole sequences -----------------------------------------------------


@pytest.mark.parametrize("name", LIQUID)
def test_liquid_chunks_with_timespans_give_the_whole_sequence_outputs_and_state(name):
    model = seeded(LIQUID[name])
    x = mx.random.normal((B, T, F), key=mx.random.key(1))
    timespans = mx.random.uniform(0.2, 2.0, (B, T), key=mx.random.key(2))
    whole, final = model(x, timespans=timespans)
    runner = StreamingRunner(model, batch_size=B)
    assert_close(stream(runner, x, timespans=timespans), whole)
    assert_same_state(runner.state, final)
    assert runner.steps_seen == T


def test_each_chunks_timespans_are_honoured():
    model = seeded(LIQUID["cfc_autoncp"])
    x = mx.random.normal((B, T, F), key=mx.random.key(1))
    slow = mx.full((B, T), 3.0)
    streamed = stream(StreamingRunner(model, B), x, timespans=slow)
    assert_close(streamed, model(x, timespans=slow)[0])
    assert not np.allclose(np.array(streamed), np.array(model(x)[0]), atol=1e-3)


def test_a_padding_mask_passes_through_per_chunk():
    model = seeded(LIQUID["cfc_mixed_memory"])
    x = mx.random.normal((B, T, F), key=mx.random.key(1))
    mask = mx.random.uniform(key=mx.random.key(2), shape=(B, T)) > 0.3
    whole, final = model(x, mask=mask)
    runner = StreamingRunner(model, B)
    assert_close(stream(runner, x, mask=mask), whole)
    assert_same_state(runner.state, final)


def test_a_model_returning_the_last_step_gives_each_chunks_last_output():
    model = seeded(lambda: CfC(F, 8, backbone_units=8, return_sequences=False))
    x = mx.random.normal((B, T, F), key=mx.random.key(1))
    runner = StreamingRunner(model, B)
    runner(x[:, :25])
    assert_close(runner(x[:, 25:]), model(x)[0])


def test_hybrid_model_chunks_give_the_whole_sequence_outputs_and_cache():
    model = hybrid_model()
    x = mx.random.normal((B, T, F), key=mx.random.key(1))
    whole, cache = model(x)
    runner = StreamingRunner(model, batch_size=B)
    assert_close(stream(runner, x), whole)
    assert_same_state(runner.state, cache)
    assert runner.state[1].offset == T


def test_a_float16_hybrid_model_streams_in_float16():
    model = hybrid_model().astype(mx.float16)
    x = mx.random.normal((B, T, F), key=mx.random.key(1))
    whole, _ = model(x)
    streamed = stream(StreamingRunner(model, batch_size=B), x)
    assert whole.dtype == streamed.dtype == mx.float16
    np.testing.assert_allclose(
        np.array(streamed.astype(mx.float32)), np.array(whole.astype(mx.float32)), atol=2e-2
    )


@pytest.mark.parametrize("name", LAYERS)
def test_a_single_hybrid_layer_streams_like_its_whole_sequence_call(name):
    layer = seeded(LAYERS[name])
    x = mx.random.normal((B, 23, 8), key=mx.random.key(1))
    whole, cache = layer(x)
    runner = StreamingRunner(layer, B)
    assert_close(stream(runner, x, longest=6, seed=3), whole)
    assert_same_state(runner.state, cache)


def test_unbatched_chunks_stream_one_sequence():
    x = mx.random.normal((T, F), key=mx.random.key(1))
    timespans = mx.random.uniform(0.2, 2.0, (T,), key=mx.random.key(2))
    liquid = seeded(LIQUID["cfc_dense"])
    streamed = stream(StreamingRunner(liquid), x, timespans=timespans)
    assert streamed.shape == (T, 8)
    assert_close(streamed, liquid(x, timespans=timespans)[0])
    hybrid = hybrid_model()
    assert_close(stream(StreamingRunner(hybrid), x), hybrid(x[None])[0][0])


# ---- reset -------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [LIQUID["cfc_mixed_memory"], hybrid_model], ids=["cfc", "hybrid"])
def test_reset_starts_a_new_stream(build):
    model = seeded(build)
    x = mx.random.normal((B, 12, F), key=mx.random.key(1))
    runner = StreamingRunner(model, B)
    first = runner(x)
    runner(mx.random.normal((B, 7, F)))
    runner.reset()
    assert runner.steps_seen == 0
    assert all(not mx.any(a).item() for a in arrays(runner.state))
    assert_close(runner(x), first)


@pytest.mark.parametrize(
    "build",
    [
        LIQUID["cfc_mixed_memory"],
        lambda: hybrid_model(WITHOUT_ATTENTION),
    ],
    ids=["cfc", "hybrid_without_attention"],
)
def test_reset_of_one_row_restarts_it_and_leaves_the_others(build):
    model = seeded(build)
    x = mx.random.normal((B, 20, F), key=mx.random.key(1))
    runner = StreamingRunner(model, B)
    runner(x[:, :8])
    runner.reset(rows=[1])
    assert runner.steps_seen == 8
    continued = runner(x[:, 8:])
    assert_close(continued[0], model(x)[0][0, 8:])
    assert_close(continued[1], model(x[1:, 8:])[0][0])


def test_reset_of_rows_refuses_an_attention_cache_and_bad_rows():
    runner = StreamingRunner(hybrid_model(), B)
    with pytest.raises(ValueError, match="rows"):
        runner.reset(rows=[B])
    runner(mx.random.normal((B, 3, F)))
    with pytest.raises(ValueError, match=r"reset\(\) without rows"):
        runner.reset(rows=0)


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build", [LIQUID["cfc_dense"], hybrid_model, LAYERS["mamba"]], ids=["cfc", "hybrid", "layer"]
)
def test_a_chunk_with_the_wrong_feature_count_is_refused(build):
    model = seeded(build)
    runner = StreamingRunner(model, B)
    features = 8 if isinstance(model, MambaBlock) else F
    with pytest.raises(ValueError, match=f"chunk has {features + 1} features .* takes {features}"):
        runner(mx.zeros((B, 4, features + 1)))


def test_a_chunk_of_another_batch_size_is_refused():
    runner = StreamingRunner(seeded(LIQUID["cfc_dense"]), batch_size=B)
    with pytest.raises(ValueError, match="the chunk holds 3 sequences, .*batch_size=2"):
        runner(mx.zeros((3, 4, F)))
    with pytest.raises(ValueError, match=r"holds 1 sequence \(it is \(T, F\)\), .*batch_size=2"):
        runner(mx.zeros((4, F)))
    with pytest.raises(ValueError, match="T >= 1"):
        runner(mx.zeros((B, 0, F)))


@pytest.mark.parametrize(
    "model",
    [
        lambda: HybridBuilder.build(["mamba", "attention"], F, 8, attention_num_heads=2),
        lambda: CausalSelfAttention(8, 2),
    ],
    ids=["hybrid", "layer"],
)
def test_attention_without_a_window_is_refused_with_the_fix(model):
    with pytest.raises(ValueError, match="window_size=None.*attention_window_size=W"):
        StreamingRunner(model())


@pytest.mark.parametrize("argument", ["timespans", "mask"])
def test_timespans_and_mask_are_refused_for_a_hybrid_model(argument):
    runner = StreamingRunner(hybrid_model(), B)
    with pytest.raises(ValueError, match=f"{argument} is only for liquid models"):
        runner(mx.zeros((B, 4, F)), **{argument: mx.ones((B, 4))})


def test_a_time_major_liquid_model_is_refused():
    with pytest.raises(ValueError, match="batch_first=True"):
        StreamingRunner(CfC(F, 8, batch_first=False))


def test_a_model_without_a_state_protocol_is_refused():
    with pytest.raises(TypeError, match="make_cache.*got Linear"):
        StreamingRunner(nn.Linear(F, 4))


# ---- memory ------------------------------------------------------------------------------------


def test_the_state_is_evaluated_after_each_chunk():
    for model in (seeded(LIQUID["cfc_mixed_memory"]), hybrid_model()):
        runner = StreamingRunner(model, B)
        for start, stop in chunk_bounds(T, 9, seed=1):
            runner(mx.random.normal((B, stop - start, F)))
            before = mx.get_active_memory()
            mx.eval(arrays(runner.state))  # a lazy state would be computed (allocated) here
            assert mx.get_active_memory() == before


# The liquid models' time loop costs ~0.15 ms a step in Python here: their stream is shorter, and
# the hybrid stack leaves out its liquid layer.
LONG_STREAMS = {
    "hybrid": (lambda: hybrid_model(HYBRID_PATTERN[:-1]), 100_000, 1000),
    "cfc": (lambda: CfC(F, AutoNCP(8, 1, seed=0)), 25_000, 2500),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", LONG_STREAMS)
def test_memory_and_state_shapes_stay_constant_over_a_long_stream(name):
    build, steps, chunk = LONG_STREAMS[name]
    runner = StreamingRunner(seeded(build))
    memory, shapes = {}, {}
    for i in range(steps // chunk):
        runner(mx.random.normal((1, chunk, F), key=mx.random.key(i)))  # a new input each chunk
        if runner.steps_seen in (steps // 10, steps):
            memory[runner.steps_seen] = mx.get_active_memory()
            shapes[runner.steps_seen] = [a.shape for a in arrays(runner.state)]
    assert shapes[steps] == shapes[steps // 10]
    # The inputs of the last 90 % of the stream alone are over 200 KiB: none of them may stay.
    assert memory[steps] - memory[steps // 10] < 16 * 1024, memory
