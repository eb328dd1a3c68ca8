"""The sequence modules LTC and CfC: the whole-sequence call equals stepping the cell.

Every property compares two independent runs: the module on a whole sequence against a Python
loop over the cell's one-step ``__call__`` (the cells themselves are checked against numpy in
test_cells.py), time-major against batch-first, unbatched against a batch of one, a split run
against the full run, and a padded batch against each sequence run alone.

Tolerances: float32, 1e-5 absolute (``ATOL``) between a whole-sequence run and a step loop;
1e-6 (``COMPILE_ATOL``) between the compiled and uncompiled paths.
"""

from functools import partial

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from model_helpers import build_model, model_twin, random_sequences
from training import train

from ncps_mlx import LTC, NCP, AutoNCP, CfC, FullyConnected

ATOL = 1e-5
COMPILE_ATOL = 1e-6
F, B, T = 3, 3, 8

# Factories take constructor keywords, so a test can build a twin with another layout and copy
# the weights (wirings are rebuilt from the same seeds, so twins have the same wiring).
MODELS = {
    "ltc-int": lambda **kw: LTC(F, 6, **kw),
    "ltc-fullyconnected": lambda **kw: LTC(F, FullyConnected(6, 2), **kw),
    "ltc-ncp": lambda **kw: LTC(F, NCP(4, 3, 2, 2, 2, 2, 2), **kw),
    "ltc-autoncp": lambda **kw: LTC(F, AutoNCP(10, 2), **kw),
    "ltc-autoncp-mixed": lambda **kw: LTC(F, AutoNCP(10, 2), mixed_memory=True, **kw),
    "cfc-int": lambda **kw: CfC(F, 6, backbone_units=8, **kw),
    "cfc-int-pure-2layers": lambda **kw: CfC(
        F, 6, mode="pure", backbone_units=8, backbone_layers=2, **kw
    ),
    "cfc-int-proj-mixed": lambda **kw: CfC(
        F, 6, proj_size=2, mixed_memory=True, backbone_units=8, **kw
    ),
    "cfc-fullyconnected": lambda **kw: CfC(F, FullyConnected(6, 2), **kw),
    "cfc-ncp-nogate": lambda **kw: CfC(F, NCP(4, 3, 2, 2, 2, 2, 2), mode="no_gate", **kw),
    "cfc-autoncp": lambda **kw: CfC(F, AutoNCP(10, 2), **kw),
    "cfc-autoncp-proj-mixed": lambda **kw: CfC(
        F, AutoNCP(10, 2), proj_size=3, mixed_memory=True, **kw
    ),
}
ALL = list(MODELS)
# One of each kind, for properties of the sequence machinery rather than of a cell.
KINDS = ["ltc-autoncp", "ltc-autoncp-mixed", "cfc-int", "cfc-autoncp", "cfc-int-proj-mixed"]


# ---------------------------------------------------------------------- helpers
build = partial(build_model, MODELS)
twin = partial(model_twin, MODELS)
data = partial(random_sequences, batch=B, steps=T, features=F)


def random_state(model, seed=1, batch=B):
    rng = np.random.default_rng(seed)
    h = mx.array(0.5 * rng.standard_normal((batch, model.state_size)).astype(np.float32))
    if not model.use_mixed:
        return h
    return h, mx.array(0.5 * rng.standard_normal((batch, model.state_size)).astype(np.float32))


def states(hx):
    return list(hx) if isinstance(hx, tuple) else [hx]


def step_by_step(model, x, hx=None, timespans=None):
    """Loop the cell's one-step ``__call__`` (the LSTM first with mixed memory) over time.

    ``x`` ``(B, T, F)``; ``timespans`` None, a float or ``(B, T)``. Returns ``(B, T, O)`` outputs
    and the final state (``(h, c)`` with mixed memory).
    """
    batch, steps = x.shape[0], x.shape[1]
    zeros = mx.zeros((batch, model.state_size))
    if hx is None:
        h, c = zeros, zeros
    elif model.use_mixed:
        h, c = hx
    else:
        h, c = hx, None
    outputs = []
    for t in range(steps):
        x_t = mx.array(x[:, t])
        if model.use_mixed:
            h, c = model.lstm(x_t, (h, c))
        if timespans is None:
            ts = 1.0
        elif np.ndim(timespans) == 0:
            ts = float(timespans)
        else:
            ts = mx.array(np.asarray(timespans, np.float32)[:, t, None])
        y, h = model.rnn_cell(x_t, h, ts)
        outputs.append(y)
    y = mx.stack(outputs, axis=1)
    if isinstance(model, CfC) and model.proj_size is not None:
        y = model.fc(y)
    return y, ((h, c) if model.use_mixed else h)


def assert_close(actual, expected, atol=ATOL):
    np.testing.assert_allclose(np.array(actual), np.array(expected), rtol=0, atol=atol)


def assert_same_states(actual, expected, atol=ATOL):
    assert type(actual) is type(expected)
    for a, e in zip(states(actual), states(expected), strict=True):
        assert_close(a, e, atol)


# ---------------------------------------------------------------------- whole sequence vs loop
@pytest.mark.parametrize("name", ALL)
def test_sequence_equals_stepping_the_cell_over_time(name):
    model = build(name)
    x = data()
    y, hx = model(mx.array(x))
    expected_y, expected_hx = step_by_step(model, x)
    assert y.shape == expected_y.shape
    assert_close(y, expected_y)
    assert_same_states(hx, expected_hx)


@pytest.mark.parametrize("name", ALL)
def test_sequence_from_a_given_state_with_irregular_timespans_equals_stepping_the_cell(name):
    model = build(name)
    x, hx = data(1), random_state(model)
    timespans = np.random.default_rng(2).uniform(0.1, 2.5, (B, T)).astype(np.float32)
    y, h = model(mx.array(x), hx=hx, timespans=mx.array(timespans))
    expected_y, expected_h = step_by_step(model, x, hx, timespans)
    assert_close(y, expected_y)
    assert_same_states(h, expected_h)


def test_mixed_memory_state_is_a_tuple_of_lstm_memory_and_cell_state():
    model = build("cfc-autoncp-proj-mixed")
    _, hx = model(mx.array(data()))
    assert isinstance(hx, tuple) and len(hx) == 2
    assert [s.shape for s in hx] == [(B, 10), (B, 10)]
    assert not np.allclose(np.array(hx[0]), np.array(hx[1]))


@pytest.mark.parametrize("name", ALL)
def test_time_major_input_gives_the_transposed_output(name):
    model = build(name)
    time_major = twin(name, model, batch_first=False)
    x, hx = data(3), random_state(model)
    y, h = model(mx.array(x), hx=hx)
    y_tm, h_tm = time_major(mx.array(x.transpose(1, 0, 2)), hx=hx)
    assert_close(y_tm, np.array(y).transpose(1, 0, 2), atol=COMPILE_ATOL)
    assert_same_states(h_tm, h, atol=COMPILE_ATOL)


@pytest.mark.parametrize("name", ALL)
def test_unbatched_input_equals_a_batch_of_one(name):
    model = build(name)
    x, hx = data(4, batch=1), random_state(model, batch=1)
    y, h = model(mx.array(x), hx=hx)
    unbatched_hx = tuple(s[0] for s in hx) if isinstance(hx, tuple) else hx[0]
    y1, h1 = model(mx.array(x[0]), hx=unbatched_hx)
    assert y1.shape == y.shape[1:]
    assert_close(y1, y[0], atol=COMPILE_ATOL)
    assert_same_states(h1, tuple(s[0] for s in h) if isinstance(h, tuple) else h[0])


@pytest.mark.parametrize("name", ALL)
def test_return_sequences_false_gives_the_last_step_output(name):
    model = build(name)
    last_only = twin(name, model, return_sequences=False)
    x = data(5)
    y, h = model(mx.array(x))
    y_last, h_last = last_only(mx.array(x))
    assert y_last.shape == (B, y.shape[-1])
    assert_close(y_last, y[:, -1], atol=COMPILE_ATOL)
    assert_same_states(h_last, h, atol=COMPILE_ATOL)
    # unbatched: (T, F) -> (O,)
    y1, _ = last_only(mx.array(x[0]))
    assert_close(y1, y[0, -1], atol=COMPILE_ATOL)


@pytest.mark.parametrize("name", ALL)
def test_passing_the_returned_state_continues_the_run(name):
    model = build(name)
    x = data(6, steps=10)
    timespans = np.random.default_rng(7).uniform(0.2, 2.0, (B, 10)).astype(np.float32)
    y, h = model(mx.array(x), timespans=mx.array(timespans))
    y1, h1 = model(mx.array(x[:, :4]), timespans=mx.array(timespans[:, :4]))
    y2, h2 = model(mx.array(x[:, 4:]), hx=h1, timespans=mx.array(timespans[:, 4:]))
    assert_close(mx.concatenate([y1, y2], axis=1), y)
    assert_same_states(h2, h)


@pytest.mark.parametrize("name", KINDS)
def test_zero_initial_state_equals_the_default(name):
    model = build(name)
    x = data(8)
    zeros = mx.zeros((B, model.state_size))
    y, h = model(mx.array(x))
    y0, h0 = model(mx.array(x), hx=(zeros, zeros) if model.use_mixed else zeros)
    assert_close(y0, y, atol=0)
    assert_same_states(h0, h, atol=0)


def test_numpy_inputs_equal_mlx_inputs():
    model = build("cfc-autoncp")
    x, ts = data(9), np.full((B, T), 0.5, np.float32)
    y, h = model(x, timespans=ts)
    y_mx, h_mx = model(mx.array(x), timespans=mx.array(ts))
    assert_close(y, y_mx, atol=0)
    assert_close(h, h_mx, atol=0)


# ---------------------------------------------------------------------- timespans
@pytest.mark.parametrize("name", KINDS)
def test_timespan_forms_scalar_bt_and_bt1_agree(name):
    model = build(name)
    x = mx.array(data(10))
    expected_y, expected_h = step_by_step(model, data(10), timespans=0.7)
    forms = [
        0.7,
        mx.array(0.7),
        np.float32(0.7),
        mx.full((B, T), 0.7),
        np.full((B, T, 1), 0.7, np.float32),
        mx.full((B, T, 1), 0.7),
    ]
    for form in forms:
        y, h = model(x, timespans=form)
        assert_close(y, expected_y)
        assert_same_states(h, expected_h)


@pytest.mark.parametrize("name", KINDS)
def test_default_timespan_is_one(name):
    model = build(name)
    x = mx.array(data(11))
    y, h = model(x)
    y1, h1 = model(x, timespans=mx.ones((B, T)))
    assert_close(y1, y)
    assert_same_states(h1, h)


@pytest.mark.parametrize("name", KINDS)
def test_timespans_follow_the_time_major_layout(name):
    model = build(name)
    time_major = twin(name, model, batch_first=False)
    x = data(12)
    timespans = np.random.default_rng(13).uniform(0.1, 3.0, (B, T)).astype(np.float32)
    y, h = model(mx.array(x), timespans=timespans)
    y_tm, h_tm = time_major(mx.array(x.transpose(1, 0, 2)), timespans=timespans.T)
    assert_close(y_tm, np.array(y).transpose(1, 0, 2), atol=COMPILE_ATOL)
    assert_same_states(h_tm, h, atol=COMPILE_ATOL)
    y_tm, _ = time_major(mx.array(x.transpose(1, 0, 2)), timespans=timespans.T[..., None])
    assert_close(y_tm, np.array(y).transpose(1, 0, 2), atol=COMPILE_ATOL)


@pytest.mark.parametrize("name", KINDS)
def test_unbatched_timespans_are_per_step(name):
    model = build(name)
    x = data(14, batch=1)
    timespans = np.random.default_rng(15).uniform(0.1, 3.0, (1, T)).astype(np.float32)
    y, _ = model(mx.array(x), timespans=timespans)
    for form in (timespans[0], timespans[0][:, None]):
        y1, _ = model(mx.array(x[0]), timespans=form)
        assert_close(y1, y[0], atol=COMPILE_ATOL)


@pytest.mark.parametrize("name", ["cfc-int", "cfc-int-pure-2layers", "cfc-autoncp"])
def test_cfc_accepts_zero_timespans(name):
    model = build(name)
    x = data(16)
    timespans = np.random.default_rng(17).uniform(0.1, 2.0, (B, T)).astype(np.float32)
    timespans[:, ::2] = 0.0
    y, h = model(mx.array(x), timespans=timespans)
    expected_y, expected_h = step_by_step(model, x, timespans=timespans)
    assert bool(mx.all(mx.isfinite(y)))
    assert_close(y, expected_y)
    assert_same_states(h, expected_h)
    y0, _ = model(mx.array(x), timespans=0.0)
    assert_close(y0, step_by_step(model, x, timespans=0.0)[0])


@pytest.mark.parametrize("timespans", [0.0, np.zeros((B, T), np.float32)], ids=["scalar", "array"])
def test_ltc_rejects_zero_timespans(timespans):
    model = build("ltc-autoncp")
    if np.ndim(timespans):
        timespans = np.ones((B, T), np.float32)
        timespans[1, 3] = 0.0
    with pytest.raises(ValueError, match="timespans"):
        model(mx.array(data()), timespans=timespans)


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int", "cfc-autoncp"])
@pytest.mark.parametrize("bad", [-0.5, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("form", ["scalar", "array"])
def test_negative_or_non_finite_timespans_are_value_errors(name, bad, form):
    model = build(name)
    if form == "scalar":
        timespans = bad
    else:
        timespans = np.ones((B, T), np.float32)
        timespans[2, 5] = bad
    with pytest.raises(ValueError, match="timespans"):
        model(mx.array(data()), timespans=timespans)


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int"])
@pytest.mark.parametrize("shape", [(B,), (T,), (T, B), (B, T + 1), (B, T, 2), (1, B, T), (B, 1)])
def test_timespans_of_the_wrong_shape_are_value_errors(name, shape):
    model = build(name)
    with pytest.raises(ValueError, match="timespans"):
        model(mx.array(data()), timespans=np.ones(shape, np.float32))


# ---------------------------------------------------------------------- padding mask
MASKED = ["ltc-autoncp", "ltc-autoncp-mixed", "cfc-int", "cfc-autoncp", "cfc-autoncp-proj-mixed"]


def padded_batch(lengths, steps=T, seed=20):
    """Sequences of the given lengths, padded at the end with large garbage values."""
    rng = np.random.default_rng(seed)
    x = data(seed, batch=len(lengths), steps=steps)
    timespans = rng.uniform(0.2, 2.0, (len(lengths), steps)).astype(np.float32)
    mask = np.arange(steps)[None] < np.array(lengths)[:, None]
    x = np.where(mask[..., None], x, 1e3 * rng.standard_normal(x.shape).astype(np.float32))
    timespans = np.where(mask, timespans, rng.uniform(5.0, 50.0, timespans.shape))
    return x, timespans.astype(np.float32), mask


def row(hx, b):
    """Sequence ``b`` of a batched state, kept as a batch of one."""
    if isinstance(hx, tuple):
        return tuple(s[b : b + 1] for s in hx)
    return hx[b : b + 1]


@pytest.mark.parametrize("name", MASKED)
def test_padded_batch_equals_each_sequence_run_alone(name):
    model = build(name)
    lengths = [T, 5, 2, 1]
    x, timespans, mask = padded_batch(lengths)
    hx = random_state(model, batch=len(lengths))
    y, h = model(mx.array(x), hx=hx, timespans=timespans, mask=mask)
    for b, length in enumerate(lengths):
        alone_y, alone_h = model(
            mx.array(x[b : b + 1, :length]), hx=row(hx, b), timespans=timespans[b : b + 1, :length]
        )
        assert_same_states(row(h, b), alone_h)
        assert_close(y[b, :length], alone_y[0])
        # padded steps repeat the last valid output
        assert_close(y[b, length:], np.broadcast_to(np.array(alone_y[0, -1]), y[b, length:].shape))


@pytest.mark.parametrize("name", MASKED)
def test_return_sequences_false_with_a_mask_gives_the_last_valid_output(name):
    model = build(name)
    last_only = twin(name, model, return_sequences=False)
    lengths = [3, T, 6]
    x, timespans, mask = padded_batch(lengths, seed=21)
    y, _ = last_only(mx.array(x), timespans=timespans, mask=mask)
    for b, length in enumerate(lengths):
        alone_y, _ = model(mx.array(x[b : b + 1, :length]), timespans=timespans[b : b + 1, :length])
        assert_close(y[b], alone_y[0, -1])


@pytest.mark.parametrize("name", MASKED)
def test_padded_steps_inside_a_sequence_leave_the_state_unchanged(name):
    model = build(name)
    x, timespans = data(22, batch=1), np.full((1, T), 0.6, np.float32)
    valid = np.array([[True, True, False, False, True, False, True, True]])
    garbage = np.where(valid[..., None], x, 1e3)
    y, h = model(mx.array(garbage), timespans=timespans, mask=valid)
    compact_y, compact_h = model(mx.array(x[:, valid[0]]), timespans=timespans[:, valid[0]])
    assert_same_states(h, compact_h)
    y = np.array(y)
    assert_close(y[:, valid[0]], compact_y)
    # a padded step repeats the output before it
    assert_close(y[:, 2], y[:, 1], atol=0)
    assert_close(y[:, 3], y[:, 1], atol=0)
    assert_close(y[:, 5], y[:, 4], atol=0)


@pytest.mark.parametrize("name", MASKED)
def test_leading_padding_equals_running_the_valid_suffix(name):
    model = build(name)
    x, timespans = data(23, batch=2), np.full((2, T), 0.9, np.float32)
    mask = np.ones((2, T), bool)
    mask[0, :3] = False
    garbage = np.where(mask[..., None], x, -1e3)
    hx = random_state(model, batch=2)
    y, h = model(mx.array(garbage), hx=hx, timespans=timespans, mask=mask)
    suffix_y, suffix_h = model(mx.array(x[:1, 3:]), hx=row(hx, 0), timespans=timespans[:1, 3:])
    assert_same_states(row(h, 0), suffix_h)
    assert_close(y[0, 3:], suffix_y[0])
    full_y, full_h = model(mx.array(x[1:]), hx=row(hx, 1), timespans=timespans[1:])
    assert_same_states(row(h, 1), full_h)
    assert_close(y[1], full_y[0])


@pytest.mark.parametrize("name", MASKED)
def test_leading_padded_outputs_are_the_output_of_the_initial_state(name):
    model = build(name)
    x = data(25, batch=1)
    mask = np.ones((1, T), bool)
    mask[0, :4] = False
    hx = random_state(model, batch=1)
    y, _ = model(mx.array(x), hx=hx, mask=mask)
    # The output the initial state stands for: one step of length 0 is not defined for LTC, so
    # compute it from a run whose only step is padded.
    expected, _ = model(mx.array(x[:, :1]), hx=hx, mask=mask[:, :1])
    for t in range(4):
        assert_close(y[0, t], expected[0, 0])
    h0 = hx[0] if isinstance(hx, tuple) else hx
    if isinstance(model, LTC):
        assert_close(expected[0, 0], model.rnn_cell.map_outputs(h0[0]))


@pytest.mark.parametrize("name", MASKED)
def test_a_sequence_without_valid_steps_keeps_its_initial_state(name):
    model = build(name)
    x = data(24, batch=2)
    mask = np.array([[False] * T, [True] * T])
    hx = random_state(model, batch=2)
    _, h = model(mx.array(x), hx=hx, mask=mask)
    assert_same_states(row(h, 0), row(hx, 0), atol=0)


@pytest.mark.parametrize("name", ["ltc-autoncp-mixed", "cfc-autoncp"])
def test_all_true_mask_equals_no_mask(name):
    model = build(name)
    x = mx.array(data(25))
    y, h = model(x)
    y_m, h_m = model(x, mask=mx.ones((B, T), dtype=mx.bool_))
    assert_close(y_m, y, atol=COMPILE_ATOL)
    assert_same_states(h_m, h, atol=COMPILE_ATOL)


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int-proj-mixed"])
def test_mask_follows_the_time_major_and_unbatched_layouts(name):
    model = build(name)
    time_major = twin(name, model, batch_first=False)
    x, timespans, mask = padded_batch([T, 4, 2], seed=26)
    y, h = model(mx.array(x), timespans=timespans, mask=mask)
    y_tm, h_tm = time_major(
        mx.array(x.transpose(1, 0, 2)), timespans=timespans.T, mask=mask.T[..., None]
    )
    assert_close(y_tm, np.array(y).transpose(1, 0, 2), atol=COMPILE_ATOL)
    assert_same_states(h_tm, h, atol=COMPILE_ATOL)
    y1, h1 = model(mx.array(x[1]), timespans=timespans[1], mask=mask[1])
    assert_close(y1, y[1], atol=COMPILE_ATOL)
    assert_same_states(h1, tuple(s[1] for s in h) if isinstance(h, tuple) else h[1])


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int"])
def test_gradients_ignore_non_finite_values_at_padded_steps(name):
    model = build(name)
    x, timespans, mask = padded_batch([T, 5, 2], seed=27)
    nan_padded = np.where(mask[..., None], x, np.nan).astype(np.float32)

    def loss(model, x):
        y, h = model(mx.array(x), timespans=timespans, mask=mask)
        return (y**2).sum() + h.sum()

    _, grads = nn.value_and_grad(model, loss)(model, x)
    _, nan_grads = nn.value_and_grad(model, loss)(model, nan_padded)
    for (_, expected), (_, actual) in zip(
        tree_flatten(grads), tree_flatten(nan_grads), strict=True
    ):
        np.testing.assert_allclose(np.array(actual), np.array(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int"])
@pytest.mark.parametrize("shape", [(B,), (T, B), (B, T + 1), (B, T, 2), (1, B, T)])
def test_mask_of_the_wrong_shape_is_a_value_error(name, shape):
    model = build(name)
    with pytest.raises(ValueError, match="mask"):
        model(mx.array(data()), mask=np.ones(shape, bool))


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int"])
@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.uint8])
def test_non_boolean_mask_is_a_type_error(name, dtype):
    model = build(name)
    with pytest.raises(TypeError, match="mask"):
        model(mx.array(data()), mask=np.ones((B, T), dtype))


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int", "cfc-autoncp"])
def test_wrong_feature_size_is_a_value_error_naming_input_size(name):
    model = build(name)
    with pytest.raises(ValueError, match="input_size=3"):
        model(mx.array(data(features=F + 1)))
    with pytest.raises(ValueError, match="input_size=3"):
        model(mx.array(data(features=F - 1)[0]))


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int"])
@pytest.mark.parametrize("shape", [(F,), (1, B, T, F)])
def test_input_of_one_or_four_dimensions_is_a_value_error(name, shape):
    model = build(name)
    with pytest.raises(ValueError, match=r"\(B, T, F\)"):
        model(mx.zeros(shape))


@pytest.mark.parametrize("name", ["ltc-autoncp", "cfc-int", "cfc-autoncp"])
def test_hx_of_the_wrong_shape_is_a_value_error(name):
    model = build(name)
    n = model.state_size
    for hx, x in [
        (mx.zeros((B, n + 1)), data()),
        (mx.zeros((B + 1, n)), data()),
        (mx.zeros((n,)), data()),  # unbatched state for a batched input
        (mx.zeros((1, n)), data()[0]),  # batched state for an unbatched input
    ]:
        with pytest.raises(ValueError, match="hx"):
            model(mx.array(x), hx=hx)


@pytest.mark.parametrize("name", ["ltc-autoncp-mixed", "cfc-int-proj-mixed"])
def test_mixed_memory_hx_must_be_an_h_c_tuple(name):
    model = build(name)
    n = model.state_size
    with pytest.raises(ValueError, match="tuple"):
        model(mx.array(data()), hx=mx.zeros((B, n)))
    with pytest.raises(ValueError, match="tuple"):
        model(mx.array(data()), hx=(mx.zeros((B, n)),))
    with pytest.raises(ValueError, match="hx"):
        model(mx.array(data()), hx=(mx.zeros((B, n)), mx.zeros((B, n + 2))))


@pytest.mark.parametrize("cls", [LTC, CfC])
def test_a_wiring_built_for_another_input_size_is_a_value_error(cls):
    wiring = AutoNCP(10, 2)
    wiring.build(F + 2)
    with pytest.raises(ValueError, match="input_dim"):
        cls(F, wiring)


@pytest.mark.parametrize("option", ["backbone_units", "backbone_layers", "backbone_dropout"])
def test_backbone_options_with_a_wiring_are_value_errors_naming_them(option):
    value = 0.1 if option == "backbone_dropout" else 2
    with pytest.raises(ValueError, match=option):
        CfC(F, AutoNCP(10, 2), **{option: value})


def test_unknown_cfc_mode_or_activation_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'fast'"):
        CfC(F, 6, mode="fast")
    with pytest.raises(ValueError, match="'fast'"):
        CfC(F, AutoNCP(10, 2), mode="fast")
    with pytest.raises(ValueError, match="'mish'"):
        CfC(F, 6, activation="mish")


def test_unknown_ltc_mapping_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="input_mapping.*'tanh'"):
        LTC(F, 6, input_mapping="tanh")
    with pytest.raises(ValueError, match="output_mapping.*'tanh'"):
        LTC(F, 6, output_mapping="tanh")


# ---------------------------------------------------------------------- compile_steps
@pytest.mark.parametrize(
    "name", ["ltc-autoncp", "ltc-autoncp-mixed", "cfc-int-pure-2layers", "cfc-autoncp-proj-mixed"]
)
def test_uncompiled_steps_give_the_same_outputs_and_gradients(name):
    model = build(name)
    x, timespans, mask = padded_batch([T, 5, 3], seed=30)
    hx = random_state(model, batch=3)

    def loss(model):
        y, h = model(mx.array(x), hx=hx, timespans=timespans, mask=mask)
        return (y**2).sum() + sum(s.sum() for s in states(h))

    assert model.compile_steps  # the default path is the compiled one
    y, h = model(mx.array(x), hx=hx, timespans=timespans, mask=mask)
    value, grads = nn.value_and_grad(model, loss)(model)
    model.compile_steps = False
    y_ref, h_ref = model(mx.array(x), hx=hx, timespans=timespans, mask=mask)
    value_ref, grads_ref = nn.value_and_grad(model, loss)(model)

    assert_close(y, y_ref, atol=COMPILE_ATOL)
    assert_same_states(h, h_ref, atol=COMPILE_ATOL)
    np.testing.assert_allclose(value.item(), value_ref.item(), rtol=1e-6)
    grads, grads_ref = dict(tree_flatten(grads)), dict(tree_flatten(grads_ref))
    assert grads.keys() == grads_ref.keys()
    for key in grads:
        expected = np.array(grads_ref[key])
        assert np.all(np.isfinite(expected)), key
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(
            np.array(grads[key]), expected, rtol=0, atol=1e-5 * scale, err_msg=key
        )


def test_compiled_steps_follow_changing_scalar_timespans_and_masks_between_calls():
    model = build("cfc-autoncp")
    reference = twin("cfc-autoncp", model)
    reference.compile_steps = False
    x, _, mask = padded_batch([T, 4, 6], seed=31)
    for kwargs in [
        {"timespans": 0.5},
        {"timespans": 2.0},
        {"timespans": 0.5, "mask": mask},
        {},
        {"mask": mask},
    ]:
        assert_close(model(mx.array(x), **kwargs)[0], reference(mx.array(x), **kwargs)[0], 0)


# ---------------------------------------------------------------------- training and long runs
def test_cfc_with_autoncp_learns_sine_wave_prediction():
    mx.random.seed(0)
    rng = np.random.default_rng(0)
    phase = rng.uniform(0, 2 * np.pi, (16, 1))
    t = 0.2 * np.arange(32)[None] + phase
    x = mx.array(np.sin(t)[..., None].astype(np.float32))
    target = mx.array(np.sin(t + 0.6)[..., None].astype(np.float32))
    model = CfC(1, AutoNCP(16, 1))
    losses = train(model, lambda m: mx.mean((m(x)[0] - target) ** 2), 80, 0.01)
    assert np.all(np.isfinite(losses))
    assert losses[-1] <= losses[0] / 10, (losses[0], losses[-1])


@pytest.mark.parametrize(
    "make",
    [lambda: LTC(2, AutoNCP(16, 2)), lambda: CfC(2, 16)],
    ids=["ltc-autoncp", "cfc-16"],
)
def test_ten_thousand_step_sequences_stay_finite(make):
    mx.random.seed(0)
    model = make()
    x = mx.array(np.random.default_rng(0).standard_normal((1, 10_000, 2)).astype(np.float32))
    y, h = model(x)
    assert y.shape[:2] == (1, 10_000)
    assert bool(mx.all(mx.isfinite(y))) and bool(mx.all(mx.isfinite(h)))
