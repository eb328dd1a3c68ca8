"""Specification of the sparse synapse store: adds, overwrites, dense views and argument checks.

Every expected value comes from an independent reference: a Python dict updated in add order
(last write wins) and a dense matrix filled from that dict.
"""

import math

import mlx.core as mx
import numpy as np
import pytest

from ncps_mlx._validation import check_int
from ncps_mlx.wirings import Wiring
from ncps_mlx.wirings.synapses import SynapseSet, check_indices, check_polarity


def dense_from_dict(synapses: dict, shape: tuple[int, int]) -> np.ndarray:
    """The reference dense matrix: ``matrix[src, dst] = polarity`` for every stored synapse."""
    matrix = np.zeros(shape, np.int64)
    for (src, dst), polarity in synapses.items():
        matrix[src, dst] = polarity
    return matrix


def sorted_triples(synapses: dict) -> tuple[list, list, list]:
    keys = sorted(synapses)
    return [k[0] for k in keys], [k[1] for k in keys], [synapses[k] for k in keys]


def assert_store_equals(wiring: Wiring, expected: dict, sensory: bool = False) -> None:
    src, dst, polarity = wiring.sensory_synapses() if sensory else wiring.synapses()
    exp_src, exp_dst, exp_pol = sorted_triples(expected)
    assert src.tolist() == exp_src
    assert dst.tolist() == exp_dst
    assert polarity.tolist() == exp_pol
    if sensory:
        assert wiring.sensory_synapse_count == len(expected)
        shape = (wiring.input_dim, wiring.units)
        np.testing.assert_array_equal(
            wiring.sensory_adjacency_matrix, dense_from_dict(expected, shape)
        )
    else:
        assert wiring.synapse_count == len(expected)
        shape = (wiring.units, wiring.units)
        np.testing.assert_array_equal(wiring.adjacency_matrix, dense_from_dict(expected, shape))


# ---------------------------------------------------------------- storage and overwrites


def test_single_adds_are_returned_sorted_by_source_then_target():
    wiring = Wiring(4)
    wiring.add_synapse(3, 0, 1)
    wiring.add_synapse(0, 2, -1)
    wiring.add_synapse(1, 1, 1)
    wiring.add_synapse(0, 1, 1)
    src, dst, polarity = wiring.synapses()
    assert src.tolist() == [0, 0, 1, 3]
    assert dst.tolist() == [1, 2, 1, 0]
    assert polarity.tolist() == [1, -1, 1, 1]
    assert wiring.synapse_count == 4


def test_bulk_add_stores_every_given_synapse():
    wiring = Wiring(5)
    wiring.add_synapses(np.array([4, 0, 2]), np.array([4, 3, 1]), np.array([-1, 1, -1]))
    assert_store_equals(wiring, {(4, 4): -1, (0, 3): 1, (2, 1): -1})


def test_bulk_add_accepts_python_lists_and_a_scalar_polarity():
    wiring = Wiring(3)
    wiring.add_synapses([0, 1, 2], [1, 2, 0], -1)
    assert_store_equals(wiring, {(0, 1): -1, (1, 2): -1, (2, 0): -1})


def test_duplicate_within_one_bulk_add_keeps_the_last_polarity():
    wiring = Wiring(3)
    wiring.add_synapses([1, 0, 1, 1, 0], [2, 0, 2, 2, 0], [1, -1, -1, 1, 1])
    assert_store_equals(wiring, {(1, 2): 1, (0, 0): 1})


def test_single_add_overwrites_an_earlier_single_add():
    wiring = Wiring(2)
    wiring.add_synapse(0, 1, 1)
    wiring.add_synapse(0, 1, -1)
    assert_store_equals(wiring, {(0, 1): -1})


def test_bulk_add_overwrites_earlier_single_adds_and_single_adds_overwrite_bulk_adds():
    wiring = Wiring(3)
    wiring.add_synapse(0, 1, 1)
    wiring.add_synapses([0, 2], [1, 2], [-1, 1])  # overwrites (0, 1)
    wiring.add_synapse(2, 2, -1)  # overwrites the bulk-added (2, 2)
    assert_store_equals(wiring, {(0, 1): -1, (2, 2): -1})


def test_overwrites_follow_add_order_whether_or_not_the_store_was_read_in_between():
    unread, read = Wiring(3), Wiring(3)
    operations = [
        ("single", 0, 0, 1),
        ("bulk", [0, 1], [0, 1], [-1, -1]),
        ("single", 1, 1, 1),
        ("single", 0, 0, 1),
        ("bulk", [1, 1], [1, 1], [1, -1]),
    ]
    for kind, src, dst, polarity in operations:
        for wiring in (unread, read):
            if kind == "single":
                wiring.add_synapse(src, dst, polarity)
            else:
                wiring.add_synapses(src, dst, polarity)
        read.synapses()  # forces a merge after every add
    expected = {(0, 0): 1, (1, 1): -1}
    assert_store_equals(unread, expected)
    assert_store_equals(read, expected)


def test_random_mix_of_single_and_bulk_adds_matches_a_last_write_wins_dict():
    rng = np.random.default_rng(0)
    units, input_dim = 7, 4
    wiring = Wiring(units)
    wiring.build(input_dim)
    internal, sensory = {}, {}
    for step in range(200):
        is_sensory = bool(rng.integers(2))
        reference = sensory if is_sensory else internal
        num_sources = input_dim if is_sensory else units
        if rng.random() < 0.5:
            src, dst = int(rng.integers(num_sources)), int(rng.integers(units))
            polarity = int(rng.choice([-1, 1]))
            add = wiring.add_sensory_synapse if is_sensory else wiring.add_synapse
            add(src, dst, polarity)
            reference[(src, dst)] = polarity
        else:
            size = int(rng.integers(0, 12))
            src = rng.integers(num_sources, size=size)
            dst = rng.integers(units, size=size)
            polarity = rng.choice([-1, 1], size=size)
            add = wiring.add_sensory_synapses if is_sensory else wiring.add_synapses
            add(src, dst, polarity)
            for s, d, p in zip(src.tolist(), dst.tolist(), polarity.tolist(), strict=True):
                reference[(s, d)] = p
        if step % 37 == 0:
            assert_store_equals(wiring, internal)
    assert_store_equals(wiring, internal)
    assert_store_equals(wiring, sensory, sensory=True)


def test_empty_bulk_add_adds_nothing():
    wiring = Wiring(3)
    wiring.build(2)
    wiring.add_synapses([], [], [])
    wiring.add_synapses(np.zeros(0, np.int64), np.zeros(0, np.int64), 1)
    wiring.add_sensory_synapses([], [], 1)
    assert wiring.synapse_count == 0
    assert wiring.sensory_synapse_count == 0


def test_large_bulk_add_counts_distinct_pairs_without_a_dense_matrix():
    units = 200_000  # a dense matrix would need 160 GB
    rng = np.random.default_rng(1)
    flat = rng.choice(units * units, size=300_000, replace=False)
    src, dst = np.divmod(flat, units)
    wiring = Wiring(units)
    wiring.add_synapses(np.concatenate([src, src[:1000]]), np.concatenate([dst, dst[:1000]]), 1)
    assert wiring.synapse_count == 300_000
    stored_src, stored_dst, _ = wiring.synapses()
    order = np.lexsort((dst, src))
    np.testing.assert_array_equal(stored_src, src[order])
    np.testing.assert_array_equal(stored_dst, dst[order])


def test_synapse_arrays_are_read_only():
    wiring = Wiring(3)
    wiring.build(2)
    for arrays in (wiring.synapses(), wiring.sensory_synapses()):  # empty stores too
        assert not any(array.flags.writeable for array in arrays)
    wiring.add_synapse(0, 1, 1)
    wiring.add_sensory_synapse(1, 2, -1)
    for arrays in (wiring.synapses(), wiring.sensory_synapses()):
        assert not any(array.flags.writeable for array in arrays)
        with pytest.raises(ValueError, match="read-only"):
            arrays[2][0] = 5
    assert wiring.synapses()[2].tolist() == [1]


def test_synapse_arrays_have_integer_indices_and_int8_polarity():
    wiring = Wiring(3)
    wiring.add_synapses([0, 2], [1, 0], [1, -1])
    src, dst, polarity = wiring.synapses()
    assert src.dtype.kind == "i" and dst.dtype.kind == "i"
    assert polarity.dtype == np.int8


# ---------------------------------------------------------------- dense views


def test_adjacency_matrix_is_an_int32_matrix_of_polarities():
    wiring = Wiring(4)
    wiring.add_synapses([0, 3, 2], [0, 1, 3], [1, -1, -1])
    expected = np.zeros((4, 4), np.int32)
    expected[0, 0], expected[3, 1], expected[2, 3] = 1, -1, -1
    assert wiring.adjacency_matrix.dtype == np.int32
    np.testing.assert_array_equal(wiring.adjacency_matrix, expected)


def test_sensory_adjacency_matrix_has_input_dim_rows_and_units_columns():
    wiring = Wiring(3)
    wiring.build(2)
    wiring.add_sensory_synapses([1, 0], [2, 0], [-1, 1])
    expected = np.array([[1, 0, 0], [0, 0, -1]], np.int32)
    assert wiring.sensory_adjacency_matrix.dtype == np.int32
    np.testing.assert_array_equal(wiring.sensory_adjacency_matrix, expected)


def test_adjacency_matrix_is_a_fresh_copy_so_editing_it_changes_nothing():
    wiring = Wiring(2)
    wiring.add_synapse(0, 1, 1)
    matrix = wiring.adjacency_matrix
    matrix[1, 1] = -1
    assert wiring.synapse_count == 1
    assert wiring.adjacency_matrix[1, 1] == 0


def test_erev_initializers_equal_the_dense_polarity_matrices_in_the_requested_dtype():
    wiring = Wiring(3)
    wiring.add_synapses([0, 1], [2, 2], [-1, 1])
    wiring.build(2)
    wiring.add_sensory_synapse(1, 0, -1)
    expected = np.array([[0, 0, -1], [0, 0, 1], [0, 0, 0]])
    expected_sensory = np.array([[0, 0, 0], [-1, 0, 0]])
    np.testing.assert_array_equal(wiring.erev_initializer(), expected)
    as_float = wiring.erev_initializer(shape=(3, 3), dtype=np.float32)
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(as_float, expected.astype(np.float32))
    np.testing.assert_array_equal(wiring.sensory_erev_initializer(), expected_sensory)
    assert wiring.sensory_erev_initializer(dtype=np.float64).dtype == np.float64


def test_mask_is_the_absolute_adjacency_as_an_mlx_float32_array():
    wiring = Wiring(3)
    wiring.add_synapses([0, 2, 1], [0, 1, 2], [-1, 1, -1])
    mask = wiring.mask()
    assert isinstance(mask, mx.array)
    assert mask.dtype == mx.float32
    expected = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], np.float32)
    np.testing.assert_array_equal(np.array(mask), expected)


def test_sensory_mask_is_the_absolute_sensory_adjacency_in_the_requested_dtype():
    wiring = Wiring(3)
    wiring.build(2)
    wiring.add_sensory_synapses([0, 1, 1], [2, 0, 1], [-1, -1, 1])
    mask = wiring.mask(sensory=True, dtype=mx.float16)
    assert mask.dtype == mx.float16
    expected = np.array([[0, 0, 1], [1, 1, 0]], np.float32)
    np.testing.assert_array_equal(np.array(mask.astype(mx.float32)), expected)


# ---------------------------------------------------------------- before build


def test_sensory_store_is_empty_and_its_matrix_none_before_build():
    wiring = Wiring(3)
    assert wiring.sensory_synapse_count == 0
    assert wiring.sensory_adjacency_matrix is None


@pytest.mark.parametrize(
    "access",
    [
        lambda w: w.sensory_synapses(),
        lambda w: w.add_sensory_synapse(0, 0, 1),
        lambda w: w.add_sensory_synapses([0], [0], 1),
        lambda w: w.sensory_erev_initializer(),
        lambda w: w.mask(sensory=True),
    ],
    ids=["sensory_synapses", "add_sensory_synapse", "add_sensory_synapses", "sensory_erev", "mask"],
)
def test_sensory_access_before_build_raises_value_error_asking_for_build(access):
    with pytest.raises(ValueError, match=r"build\(input_dim\)"):
        access(Wiring(3))


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize("polarity", [0, 2, -2, 0.5, math.nan, math.inf])
def test_single_add_rejects_a_polarity_other_than_plus_or_minus_one(polarity):
    wiring = Wiring(2)
    with pytest.raises(ValueError, match="polarity"):
        wiring.add_synapse(0, 1, polarity)
    assert wiring.synapse_count == 0


@pytest.mark.parametrize("polarity", [[1, 0], [1, 2], [-1, 0.5], [1, math.nan]])
def test_bulk_add_rejects_any_polarity_other_than_plus_or_minus_one(polarity):
    wiring = Wiring(2)
    with pytest.raises(ValueError, match="polarity"):
        wiring.add_synapses([0, 1], [1, 0], polarity)
    assert wiring.synapse_count == 0


@pytest.mark.parametrize("polarity", [True, "1", [True, False]])
def test_add_rejects_a_non_numeric_polarity_with_type_error(polarity):
    with pytest.raises(TypeError, match="polarity"):
        Wiring(2).add_synapses([0, 1], [1, 0], polarity)


def test_polarity_given_as_floats_one_and_minus_one_is_stored_as_integers():
    wiring = Wiring(2)
    wiring.add_synapses([0, 1], [1, 0], [1.0, -1.0])
    assert wiring.synapses()[2].tolist() == [1, -1]


@pytest.mark.parametrize(
    "src, dst, name",
    [(3, 0, "src"), (0, 3, "dst"), (-1, 0, "src"), (0, -1, "dst"), (10**12, 0, "src")],
)
def test_single_add_rejects_out_of_range_indices_naming_the_argument(src, dst, name):
    with pytest.raises(ValueError, match=rf"{name}=-?\d+ is out of range.*units=3"):
        Wiring(3).add_synapse(src, dst, 1)


@pytest.mark.parametrize(
    "src, dst, name", [([0, 3], [0, 0], "src"), ([0, 0], [1, 5], "dst"), ([0, -2], [0, 0], "src")]
)
def test_bulk_add_rejects_out_of_range_indices_and_adds_nothing(src, dst, name):
    wiring = Wiring(3)
    with pytest.raises(ValueError, match=rf"{name}=-?\d+ is out of range"):
        wiring.add_synapses(src, dst, 1)
    assert wiring.synapse_count == 0


def test_sensory_source_range_is_input_dim_and_target_range_is_units():
    wiring = Wiring(5)
    wiring.build(2)
    with pytest.raises(ValueError, match=r"src=2 is out of range.*input_dim=2"):
        wiring.add_sensory_synapse(2, 0, 1)
    with pytest.raises(ValueError, match=r"dst=5 is out of range.*units=5"):
        wiring.add_sensory_synapses([0], [5], 1)
    wiring.add_sensory_synapse(1, 4, 1)
    assert wiring.sensory_synapses()[0].tolist() == [1]


@pytest.mark.parametrize(
    "src, dst, name",
    [
        (1.0, 0, "src"),
        (0, 1.5, "dst"),
        ("0", 0, "src"),
        (True, 0, "src"),
        ([0.0, 1.0], [0, 1], "src"),
    ],
)
def test_add_rejects_non_integer_indices_with_type_error(src, dst, name):
    wiring = Wiring(3)
    with pytest.raises(TypeError, match=name):
        if np.ndim(src) == 0:
            wiring.add_synapse(src, dst, 1)
        else:
            wiring.add_synapses(src, dst, 1)


def test_bulk_add_rejects_src_and_dst_of_different_lengths():
    with pytest.raises(ValueError, match="src and dst must have the same length, got 2 and 3"):
        Wiring(4).add_synapses([0, 1], [0, 1, 2], 1)


def test_bulk_add_rejects_a_polarity_array_of_another_length():
    with pytest.raises(
        ValueError, match=r"polarity must be a scalar or have the length of src \(3\)"
    ):
        Wiring(4).add_synapses([0, 1, 2], [0, 1, 2], [1, -1])


def test_check_int_accepts_numpy_integers_and_rejects_bools_and_floats():
    assert check_int(np.int64(5), "n") == 5
    assert type(check_int(np.uint8(5), "n")) is int
    for bad in (True, 5.0, "5", None):
        with pytest.raises(TypeError, match="n must be an integer"):
            check_int(bad, "n")


def test_check_int_bounds_are_inclusive_and_named():
    assert check_int(1, "units", minimum=1, maximum=1) == 1
    with pytest.raises(ValueError, match="units must be >= 1, got 0"):
        check_int(0, "units", minimum=1)
    with pytest.raises(ValueError, match="output_dim must be <= 4, got 5"):
        check_int(5, "output_dim", maximum=4)


def test_check_indices_returns_a_flat_int64_array():
    result = check_indices(np.array([1, 2, 0, 3], np.int16), "src", 4, "units")
    assert result.dtype == np.int64
    assert result.tolist() == [1, 2, 0, 3]
    assert check_indices(np.int16(2), "src", 4, "units").tolist() == [2]


def test_check_polarity_returns_int8_plus_minus_one():
    result = check_polarity([1.0, -1, 1])
    assert result.dtype == np.int8
    assert result.tolist() == [1, -1, 1]


def test_synapse_set_dense_and_length_match_a_reference_for_a_rectangular_range():
    store = SynapseSet(num_sources=2, num_targets=5, source_name="input_dim")
    store.add([1, 0, 1], [4, 4, 4], [1, 1, -1])
    store.add(0, 0, -1)
    expected = {(1, 4): -1, (0, 4): 1, (0, 0): -1}
    assert len(store) == 3
    np.testing.assert_array_equal(store.dense(), dense_from_dict(expected, (2, 5)))


def test_synapse_set_replace_drops_previous_and_pending_synapses():
    store = SynapseSet(3, 3)
    store.add([0, 1], [0, 1], 1)
    store.arrays()
    store.add(2, 2, -1)  # still pending when replace is called
    store.replace([1], [2], [-1])
    src, dst, polarity = store.arrays()
    assert (src.tolist(), dst.tolist(), polarity.tolist()) == ([1], [2], [-1])


def test_bulk_add_rejects_two_dimensional_index_arrays():
    wiring = Wiring(4)
    with pytest.raises(ValueError, match="src must be an index or a 1-D list"):
        wiring.add_synapses([[0, 1, 2], [1, 2, 3]], [0, 1, 2, 3, 0, 1], 1)
    assert wiring.synapse_count == 0
