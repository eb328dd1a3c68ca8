"""Fast weights of MetaWiring in LTC: the Hebbian rule, within-sequence change, reset, layouts."""

import mlx.core as mx
import numpy as np
import pytest

from ncps_mlx import LTC, LTCCell
from ncps_mlx.wirings import AutoNCP, MetaWiring

F = 3


def meta():
    return MetaWiring(6, 5, 2, decay=0.8, learning_rate=0.5, seed=3)


@pytest.mark.parametrize("sparse", [True, False])
def test_traces_follow_the_hebbian_rule_step_by_step(sparse):
    mx.random.seed(0)
    wiring = meta()
    cell = LTCCell(wiring, F, sparse=sparse)
    src, dst, _ = wiring.synapses()
    fast = wiring.fast_synapse_mask()
    n = wiring.units
    assert cell.state_size == n + int(fast.sum())
    state = mx.zeros((2, cell.state_size))
    x = mx.random.normal((5, 2, F))
    for t in range(5):
        _, new_state = cell(x[t], state)
        old_traces, traces = np.array(state[:, n:]), np.array(new_state[:, n:])
        v = np.array(new_state[:, :n])
        expected = 0.8 * old_traces + 0.5 * v[:, src[fast]] * v[:, dst[fast]]
        np.testing.assert_allclose(traces, expected, rtol=1e-5, atol=1e-6)
        state = new_state
    assert np.abs(np.array(state[:, n:])).max() > 0  # the traces changed within the sequence


def test_fast_weights_change_the_dynamics_only_after_the_first_step():
    mx.random.seed(1)
    with_fast = LTC(F, meta())
    without = LTC(F, meta(), fast_weights=False)
    without.update(with_fast.parameters())
    x = mx.random.normal((2, 8, F))
    y_fast, _ = with_fast(x)
    y_plain, _ = without(x)
    np.testing.assert_allclose(np.array(y_fast[:, 0]), np.array(y_plain[:, 0]), atol=1e-6)
    assert np.abs(np.array(y_fast[:, 1:] - y_plain[:, 1:])).max() > 1e-4


def test_traces_reset_between_sequences_and_continue_when_the_state_is_passed_on():
    mx.random.seed(2)
    model = LTC(F, meta())
    x = mx.random.normal((2, 6, F))
    first, state = model(x)
    again, _ = model(x)  # a new sequence starts from zero traces
    np.testing.assert_array_equal(np.array(first), np.array(again))
    continued, _ = model(x, hx=state)
    n = model.wiring.units
    assert np.abs(np.array(state[:, n:])).max() > 0
    assert np.abs(np.array(continued - first)).max() > 1e-5


def test_sparse_and_dense_layouts_agree_with_fast_weights():
    mx.random.seed(3)
    sparse, dense = LTC(F, meta(), sparse=True), LTC(F, meta(), sparse=False)
    dense.update(
        {
            "rnn_cell": {
                k: mx.array(dense.rnn_cell.from_ncps(k, sparse.rnn_cell.to_ncps(k, v)))
                for k, v in sparse.rnn_cell.parameters().items()
            }
        }
    )
    x = mx.random.normal((2, 6, F))
    (y1, h1), (y2, h2) = sparse(x), dense(x)
    np.testing.assert_allclose(np.array(y1), np.array(y2), atol=1e-5)
    np.testing.assert_allclose(np.array(h1), np.array(h2), atol=1e-5)


def test_fast_weights_need_a_wiring_with_fast_synapses_and_exclude_mixed_memory():
    with pytest.raises(ValueError, match="fast synapses"):
        LTCCell(AutoNCP(10, 2), F, fast_weights=True)
    with pytest.raises(ValueError, match="mixed_memory"):
        LTC(F, meta(), mixed_memory=True)
    assert LTC(F, meta(), mixed_memory=True, fast_weights=False).state_size == meta().units
