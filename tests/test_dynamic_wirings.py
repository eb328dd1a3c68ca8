"""Specification of the dynamic wirings: DynamicRoutingWiring, AdaptiveWiring, MetaWiring.

Structure is checked against counts from the documented formulas and against block-by-block
reading of the adjacency matrices; routing maths against a hand-computed case and the MLX
version; adaptive rewiring against an independent sort of the scores.
"""

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from training import train  # noqa: E402

from ncps_mlx import LTC, CfC
from ncps_mlx.cells.ltc_routing import (
    capsule_predictions_mx,
    routing_by_agreement_mx,
    routing_coefficients_mx,
    squash_mx,
    synapse_coupling_mx,
)
from ncps_mlx.wirings import NCP, FullyConnected, Random, Wiring
from ncps_mlx.wirings.dynamic import (
    AdaptiveWiring,
    DynamicRoutingWiring,
    MetaWiring,
    routing_by_agreement,
    routing_coefficients,
    squash,
)


def block(wiring, sources, targets):
    """The adjacency block ``sources x targets`` of a wiring (neuron id arrays)."""
    return wiring.adjacency_matrix[np.ix_(sources, targets)]


def pair_set(src, dst):
    return set(zip(np.asarray(src).tolist(), np.asarray(dst).tolist(), strict=True))


# ====================================================================== DynamicRoutingWiring
def test_routing_wiring_numbers_output_capsules_first_then_primary_capsules():
    wiring = DynamicRoutingWiring(3, 2, num_input_capsules=4, input_capsule_dim=5)
    assert wiring.units == 3 * 2 + 4 * 5
    assert wiring.output_dim == 6
    assert wiring.group_names == ["output", "primary"]
    assert wiring.group("output").tolist() == list(range(6))
    assert wiring.group("primary").tolist() == list(range(6, 26))
    assert [wiring.get_neurons_of_layer(i) for i in range(wiring.num_layers)] == [
        list(range(6, 26)),
        list(range(6)),
    ]
    expected_capsule = [n // 2 for n in range(6)] + [(n - 6) // 5 for n in range(6, 26)]
    expected_position = [n % 2 for n in range(6)] + [(n - 6) % 5 for n in range(6, 26)]
    assert wiring.capsule_of_neuron().tolist() == expected_capsule
    assert wiring.position_in_capsule().tolist() == expected_position
    assert wiring.neuron_types().tolist() == ["output"] * 6 + ["primary"] * 20


def test_routing_wiring_defaults_primary_capsules_to_the_output_capsule_shape():
    wiring = DynamicRoutingWiring(4, 3)
    assert (wiring.num_input_capsules, wiring.input_capsule_dim) == (4, 3)
    assert wiring.units == 2 * 4 * 3
    assert wiring.routing_iterations == 3


@pytest.mark.parametrize("recurrence", [True, False])
def test_every_primary_neuron_reaches_every_output_neuron_and_capsules_are_recurrent(recurrence):
    J, D, I, Din = 3, 2, 4, 3  # noqa: E741 (the paper's names)
    wiring = DynamicRoutingWiring(
        J, D, num_input_capsules=I, input_capsule_dim=Din, capsule_recurrence=recurrence
    )
    output, primary = wiring.group("output"), wiring.group("primary")
    assert np.all(block(wiring, primary, output) != 0)
    assert np.all(block(wiring, output, primary) == 0)
    expected = np.zeros((wiring.units, wiring.units), bool)
    expected[np.ix_(primary, output)] = True
    if recurrence:
        capsule = np.concatenate([np.arange(J * D) // D, J + np.arange(I * Din) // Din])
        expected |= capsule[:, None] == capsule[None, :]
    assert np.array_equal(wiring.adjacency_matrix != 0, expected)
    assert wiring.synapse_count == I * Din * J * D + recurrence * (J * D**2 + I * Din**2)


def test_routing_wiring_draws_polarities_in_the_documented_order():
    J, D, I, Din, input_dim, seed = 2, 3, 3, 2, 4, 77  # noqa: E741 (the paper's names)
    wiring = DynamicRoutingWiring(J, D, num_input_capsules=I, input_capsule_dim=Din, seed=seed)
    wiring.build(input_dim)
    rng = np.random.default_rng(seed)
    choices = np.array([-1, 1, 1])
    expected = np.zeros((wiring.units, wiring.units), np.int32)
    routing = rng.choice(choices, size=I * Din * J * D)
    for index, (dst, src) in enumerate(np.ndindex(J * D, I * Din)):  # target-major
        expected[J * D + src, dst] = routing[index]
    starts = [j * D for j in range(J)] + [J * D + i * Din for i in range(I)]
    sizes = [D] * J + [Din] * I
    recurrent = iter(rng.choice(choices, size=J * D**2 + I * Din**2))
    for start, size in zip(starts, sizes, strict=True):
        for a, b in np.ndindex(size, size):
            expected[start + a, start + b] = next(recurrent)
    assert np.array_equal(wiring.adjacency_matrix, expected)
    sensory = np.zeros((input_dim, wiring.units), np.int32)
    draws = rng.choice(choices, size=input_dim * I * Din)
    for index, (dst, src) in enumerate(np.ndindex(I * Din, input_dim)):
        sensory[src, J * D + dst] = draws[index]
    assert np.array_equal(wiring.sensory_adjacency_matrix, sensory)


@pytest.mark.parametrize("fanin, input_dim, expected", [(2, 5, 2), (5, 5, 5), (9, 5, 5)])
def test_sensory_inputs_reach_only_primary_neurons_with_the_clipped_fan_in(
    fanin, input_dim, expected
):
    wiring = DynamicRoutingWiring(2, 2, num_input_capsules=3, sensory_fanin=fanin)
    wiring.build(input_dim)
    sensory = wiring.sensory_adjacency_matrix != 0
    assert not sensory[:, wiring.group("output")].any()
    assert (sensory[:, wiring.group("primary")].sum(axis=0) == expected).all()
    assert wiring.sensory_synapse_count == expected * 6


def test_routing_pairs_and_slots_name_the_capsule_pair_of_every_synapse():
    J, D, I, Din = 3, 2, 2, 4  # noqa: E741 (the paper's names)
    wiring = DynamicRoutingWiring(J, D, num_input_capsules=I, input_capsule_dim=Din)
    src, dst, _ = wiring.synapses()
    pairs, slots = wiring.routing_pairs(), wiring.routing_slots()
    assert pairs.shape == slots.shape == src.shape
    for s, d, pair, slot in zip(src, dst, pairs, slots, strict=True):
        if s >= J * D and d < J * D:
            i, j, k = (s - J * D) // Din, d // D, d % D
            assert (pair, slot) == (i * J + j, (i * J + j) * D + k)
        else:
            assert (pair, slot) == (-1, -1)
    assert np.bincount(pairs[pairs >= 0]).tolist() == [Din * D] * (I * J)


def test_routing_wiring_method_uses_its_iterations_and_checks_the_capsule_shape():
    wiring = DynamicRoutingWiring(3, 2, routing_iterations=2, num_input_capsules=4)
    u_hat = np.random.default_rng(0).standard_normal((5, 4, 3, 2))
    assert np.array_equal(wiring.routing_coefficients(u_hat), routing_coefficients(u_hat, 2))
    assert np.array_equal(wiring.routing_coefficients(u_hat, 4), routing_coefficients(u_hat, 4))
    with pytest.raises(ValueError, match="predictions must have shape"):
        wiring.routing_coefficients(u_hat[..., :1])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_capsules": 0}, ValueError, "num_capsules"),
        ({"num_capsules": 2.0}, TypeError, "num_capsules"),
        ({"capsule_dim": 0}, ValueError, "capsule_dim"),
        ({"routing_iterations": 0}, ValueError, "routing_iterations"),
        ({"routing_iterations": "3"}, TypeError, "routing_iterations"),
        ({"num_input_capsules": 0}, ValueError, "num_input_capsules"),
        ({"input_capsule_dim": -1}, ValueError, "input_capsule_dim"),
        ({"sensory_fanin": 0}, ValueError, "sensory_fanin"),
        ({"capsule_recurrence": 1}, TypeError, "capsule_recurrence"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "x"}, TypeError, "seed"),
    ],
)
def test_routing_wiring_rejects_bad_arguments(kwargs, error, message):
    args = {"num_capsules": 2, "capsule_dim": 2, **kwargs}
    with pytest.raises(error, match=message):
        DynamicRoutingWiring(**args)


# ====================================================================== routing maths
def test_routing_coefficients_of_a_hand_computed_case():
    # One input capsule, two output capsules, dim 1: u_hat = (2, 1).
    u_hat = np.array([[[2.0], [1.0]]])
    assert np.allclose(routing_coefficients(u_hat, 1), [[0.5, 0.5]])
    # Iteration 1: s = (1, 0.5), v = squash(s) = (1/2, 0.2); b = (2 * 0.5, 1 * 0.2).
    c1 = 1.0 / (1.0 + math.exp(-(1.0 - 0.2)))
    assert np.allclose(routing_coefficients(u_hat, 2), [[c1, 1 - c1]], atol=1e-12)
    _, v = routing_by_agreement(u_hat, 1)
    assert np.allclose(v, [[0.5], [0.2]])


def test_squash_keeps_direction_and_maps_length_below_one():
    s = np.random.default_rng(1).standard_normal((10, 5)) * np.logspace(-3, 3, 10)[:, None]
    v = squash(s)
    length = np.linalg.norm(s, axis=-1)
    assert np.allclose(np.linalg.norm(v, axis=-1), length**2 / (1 + length**2))
    assert np.allclose(v / np.linalg.norm(v, axis=-1, keepdims=True), s / length[:, None])
    assert np.array_equal(squash(np.zeros((2, 3))), np.zeros((2, 3)))


@pytest.mark.parametrize("iterations", [1, 2, 3, 5])
def test_coupling_coefficients_are_a_distribution_over_output_capsules(iterations):
    u_hat = np.random.default_rng(iterations).standard_normal((2, 3, 6, 4, 5)) * 3
    c = routing_coefficients(u_hat, iterations)
    assert c.shape == (2, 3, 6, 4)
    assert np.all(c > 0)
    assert np.allclose(c.sum(axis=-1), 1.0)


def test_coupling_to_the_capsule_all_inputs_agree_on_rises_with_iterations():
    # Every prediction has the same length, so only agreement in direction tells the output
    # capsules apart: for the capsule every input predicts alike, |s_j| is the largest and so
    # is its agreement increment <u_hat, v_j>, at every iteration.
    rng = np.random.default_rng(2)
    batch, num_in, num_out, dim, agreeing = 64, 6, 4, 8, 2
    u_hat = rng.standard_normal((batch, num_in, num_out, dim))
    u_hat[:, :, agreeing] = rng.standard_normal((batch, 1, dim))  # every input votes alike
    u_hat *= 3.0 / np.linalg.norm(u_hat, axis=-1, keepdims=True)
    coupling = [routing_coefficients(u_hat, r)[..., agreeing] for r in (1, 2, 3)]
    assert np.allclose(coupling[0], 1 / num_out)
    assert np.all(coupling[1] > coupling[0]) and np.all(coupling[2] > coupling[1])
    others = np.delete(routing_coefficients(u_hat, 3), agreeing, axis=-1)
    assert np.all(coupling[2][..., None] > others)


@pytest.mark.parametrize("shape, iterations", [((4, 3, 2), 1), ((2, 5, 4, 3), 3), ((7, 2, 6), 4)])
def test_numpy_and_mlx_routing_agree(shape, iterations):
    u_hat = np.random.default_rng(3).standard_normal(shape).astype(np.float32) * 2
    c, v = routing_by_agreement(u_hat.astype(np.float64), iterations)
    c_mx, v_mx = routing_by_agreement_mx(mx.array(u_hat), iterations)
    assert np.allclose(np.array(c_mx), c, atol=1e-5, rtol=0)
    assert np.allclose(np.array(v_mx), v, atol=1e-5, rtol=0)
    c_only = routing_coefficients_mx(mx.array(u_hat), iterations)
    assert np.allclose(np.array(c_only), c, atol=1e-5, rtol=0)
    assert np.allclose(np.array(squash_mx(mx.array(u_hat))), squash(u_hat), atol=1e-6)


def test_mlx_gathers_map_synapse_drives_to_predictions_and_couplings_back():
    J, D, I, Din = 2, 3, 3, 2  # noqa: E741 (the paper's names)
    wiring = DynamicRoutingWiring(J, D, num_input_capsules=I, input_capsule_dim=Din)
    src, dst, _ = wiring.synapses()
    drives = np.random.default_rng(4).standard_normal((5, src.size)).astype(np.float32)
    u_hat = capsule_predictions_mx(mx.array(drives), wiring.routing_slots(), I, J, D)
    expected = np.zeros((5, I, J, D), np.float32)
    for index, (s, d) in enumerate(zip(src, dst, strict=True)):
        if s >= J * D and d < J * D:
            expected[:, (s - J * D) // Din, d // D, d % D] += drives[:, index]
    assert np.allclose(np.array(u_hat), expected, atol=1e-5)
    c = routing_coefficients(expected, 3)
    gains = np.array(synapse_coupling_mx(mx.array(c.astype(np.float32)), wiring.routing_pairs()))
    for index, (s, d) in enumerate(zip(src, dst, strict=True)):
        routed = s >= J * D and d < J * D
        want = c[:, (s - J * D) // Din, d // D] if routed else np.ones(5)
        assert np.allclose(gains[:, index], want, atol=1e-6)


@pytest.mark.parametrize(
    "predictions, iterations, error, message",
    [
        (np.zeros((2, 3, 4)), 0, ValueError, "iterations"),
        (np.zeros((2, 3, 4)), 1.5, TypeError, "iterations"),
        (np.zeros((3, 4)), 1, ValueError, "predictions"),
        (np.zeros((0, 3, 4)), 1, ValueError, "predictions"),
        (np.full((2, 3, 4), np.nan), 1, ValueError, "finite"),
        (np.array([[["a"]]]), 1, TypeError, "predictions"),
    ],
)
def test_routing_rejects_bad_arguments(predictions, iterations, error, message):
    with pytest.raises(error, match=message):
        routing_coefficients(predictions, iterations)


# ====================================================================== AdaptiveWiring
def built(wiring, input_dim=3):
    wiring.build(input_dim)
    return wiring


@pytest.mark.parametrize(
    "make",
    [
        lambda: built(Random(12, 3, sparsity_level=0.6, random_seed=5)),
        lambda: built(NCP(5, 4, 2, 3, 2, 4, 2, seed=9)),
        lambda: built(MetaWiring(4, 5, 2, slow_fanin=3, seed=3)),
        lambda: built(DynamicRoutingWiring(2, 2, num_input_capsules=3)),
    ],
    ids=["random", "ncp", "meta", "routing"],
)
def test_adaptive_wiring_starts_as_an_exact_copy_of_its_base(make):
    base = make()
    adaptive = AdaptiveWiring(base)
    for a, b in zip(adaptive.synapses(), base.synapses(), strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(adaptive.sensory_synapses(), base.sensory_synapses(), strict=True):
        assert np.array_equal(a, b)
    assert (adaptive.units, adaptive.input_dim, adaptive.output_dim) == (
        base.units,
        base.input_dim,
        base.output_dim,
    )
    assert np.array_equal(adaptive.neuron_types(), base.neuron_types())
    assert np.array_equal(adaptive.neuron_time_scales(), base.neuron_time_scales())
    assert [adaptive.get_neurons_of_layer(i) for i in range(adaptive.num_layers)] == [
        base.get_neurons_of_layer(i) for i in range(base.num_layers)
    ]
    assert adaptive.connectivity_version == 0


def test_adaptive_wiring_from_units_wraps_the_documented_random_base():
    adaptive = built(AdaptiveWiring(10, seed=8, output_dim=2))
    reference = built(Random(10, 2, sparsity_level=0.5, random_seed=8))
    assert np.array_equal(adaptive.adjacency_matrix, reference.adjacency_matrix)
    assert np.array_equal(adaptive.sensory_adjacency_matrix, reference.sensory_adjacency_matrix)
    assert adaptive.output_dim == 2


def test_adaptive_wiring_of_an_unbuilt_ncp_takes_the_synapses_drawn_at_build():
    adaptive = AdaptiveWiring(NCP(5, 4, 2, 3, 2, 4, 2, seed=9))
    assert adaptive.synapse_count == 0  # NCP draws its whole circuit in build
    adaptive.build(3)
    reference = built(NCP(5, 4, 2, 3, 2, 4, 2, seed=9))
    assert np.array_equal(adaptive.adjacency_matrix, reference.adjacency_matrix)
    assert np.array_equal(adaptive.sensory_adjacency_matrix, reference.sensory_adjacency_matrix)


def test_adaptive_wiring_copies_the_base_instead_of_sharing_it():
    base = Random(6, sparsity_level=0.5, random_seed=1)
    adaptive = AdaptiveWiring(base)
    free_src, free_dst = np.argwhere(base.adjacency_matrix == 0)[0]
    base.add_synapse(free_src, free_dst, -1)
    assert adaptive.synapse_count == base.synapse_count - 1
    assert adaptive.adjacency_matrix[free_src, free_dst] == 0


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_update_prunes_the_least_important_synapses_and_grows_as_many_new_ones(fraction):
    adaptive = built(
        AdaptiveWiring(Random(16, sparsity_level=0.7, random_seed=2), prune_fraction=fraction)
    )
    src, dst, polarity = (a.copy() for a in adaptive.synapses())
    count = src.size
    importance = np.random.default_rng(0).random((16, 16))
    sensory_before = adaptive.sensory_adjacency_matrix
    pruned_src, pruned_dst, grown_src, grown_dst = adaptive.update_connectivity(importance)

    k = round(fraction * count)
    ranked = sorted(range(count), key=lambda s: (importance[src[s], dst[s]], s))
    assert pair_set(pruned_src, pruned_dst) == pair_set(src[ranked[:k]], dst[ranked[:k]])
    assert len(grown_src) == k and len(pair_set(grown_src, grown_dst)) == k
    assert not pair_set(grown_src, grown_dst) & pair_set(src, dst)
    after = pair_set(*adaptive.synapses()[:2])
    assert after == (pair_set(src, dst) - pair_set(pruned_src, pruned_dst)) | pair_set(
        grown_src, grown_dst
    )
    assert adaptive.synapse_count == count
    kept = adaptive.adjacency_matrix[src, dst]
    survived = kept != 0
    assert np.array_equal(kept[survived], polarity[survived])  # kept synapses keep polarity
    assert set(adaptive.adjacency_matrix[grown_src, grown_dst].tolist()) <= {-1, 1}
    assert np.array_equal(adaptive.sensory_adjacency_matrix, sensory_before)
    assert adaptive.connectivity_version == 1


def test_per_synapse_importance_gives_the_same_update_as_the_dense_matrix():
    dense_scores = np.random.default_rng(5).random((12, 12))
    first = AdaptiveWiring(Random(12, sparsity_level=0.5, random_seed=3), prune_fraction=0.3)
    second = AdaptiveWiring(Random(12, sparsity_level=0.5, random_seed=3), prune_fraction=0.3)
    src, dst, _ = second.synapses()
    result_dense = first.update_connectivity(dense_scores)
    result_vector = second.update_connectivity(mx.array(dense_scores[src, dst]))
    for a, b in zip(result_dense, result_vector, strict=True):
        assert np.array_equal(a, b)


def test_growth_scores_grow_the_highest_scoring_new_pairs():
    adaptive = AdaptiveWiring(Random(10, sparsity_level=0.6, random_seed=4), prune_fraction=0.2)
    src, dst, _ = (a.copy() for a in adaptive.synapses())
    rng = np.random.default_rng(6)
    importance, growth = rng.random((10, 10)), rng.integers(0, 5, (10, 10)).astype(float)
    _, _, grown_src, grown_dst = adaptive.update_connectivity(importance, growth)
    present = pair_set(src, dst)
    free = [(s, d) for s in range(10) for d in range(10) if (s, d) not in present]
    best = sorted(free, key=lambda p: (-growth[p], p[0] * 10 + p[1]))[: round(0.2 * src.size)]
    assert pair_set(grown_src, grown_dst) == set(best)


def test_repeated_updates_keep_the_synapse_budget_and_count_versions():
    adaptive = built(AdaptiveWiring(20, prune_fraction=0.3, seed=1))
    budget = adaptive.synapse_count
    rng = np.random.default_rng(7)
    for version in range(1, 11):
        growth = rng.random((20, 20)) if version % 2 else None
        pruned = adaptive.update_connectivity(rng.random(budget), growth)[0]
        assert len(pruned) == round(0.3 * budget)
        assert adaptive.synapse_count == budget
        assert adaptive.connectivity_version == version


def test_uniform_growth_reaches_every_free_pair_about_equally_often():
    base = Random(4, sparsity_level=0.5, random_seed=0)  # 8 of the 16 pairs
    free = {(s, d) for s in range(4) for d in range(4)} - pair_set(*base.synapses()[:2])
    counts = dict.fromkeys(free, 0)
    for version in range(800):
        adaptive = AdaptiveWiring(base, prune_fraction=0.125, connectivity_version=version)
        _, _, grown_src, grown_dst = adaptive.update_connectivity(np.zeros((4, 4)))
        for pair in pair_set(grown_src, grown_dst):
            counts[pair] += 1
    assert sum(counts.values()) == 800
    assert all(50 <= count <= 150 for count in counts.values()), counts


@pytest.mark.parametrize("rule, allowed", [(1, {1}), (-1, {-1}), ("random", {-1, 1})])
def test_grown_synapses_follow_the_growth_polarity_rule(rule, allowed):
    adaptive = AdaptiveWiring(30, prune_fraction=0.5, growth_polarity=rule, seed=2)
    _, _, grown_src, grown_dst = adaptive.update_connectivity(np.ones((30, 30)))
    assert set(adaptive.adjacency_matrix[grown_src, grown_dst].tolist()) == allowed


def test_update_of_a_complete_wiring_changes_nothing():
    adaptive = AdaptiveWiring(FullyConnected(5), prune_fraction=0.5)
    before = adaptive.adjacency_matrix
    result = adaptive.update_connectivity(np.ones((5, 5)))
    assert all(len(a) == 0 for a in result)
    assert np.array_equal(adaptive.adjacency_matrix, before)


@pytest.mark.parametrize("built_first", [True, False])
def test_updated_adaptive_wiring_round_trips_and_continues_the_same_updates(tmp_path, built_first):
    adaptive = AdaptiveWiring(Random(14, 2, sparsity_level=0.6, random_seed=3), prune_fraction=0.3)
    if built_first:
        adaptive.build(4)
    rng = np.random.default_rng(8)
    for _ in range(3):
        adaptive.update_connectivity(rng.random((14, 14)))
    original = Random(14, 2, sparsity_level=0.6, random_seed=3)
    assert not np.array_equal(adaptive.adjacency_matrix, original.adjacency_matrix)

    config = adaptive.get_config()
    restored = Wiring.from_config(json.loads(json.dumps(config)))
    adaptive.save(tmp_path / "adaptive.json")
    loaded = Wiring.load(tmp_path / "adaptive.json")
    for copy in (restored, loaded):
        assert type(copy) is AdaptiveWiring
        assert copy.get_config() == config
        assert np.array_equal(copy.adjacency_matrix, adaptive.adjacency_matrix)
        assert copy.connectivity_version == 3
    if not built_first:
        for wiring in (adaptive, restored):
            wiring.build(4)
        assert restored.get_config() == adaptive.get_config()
    scores = rng.random((14, 14))
    for a, b in zip(
        adaptive.update_connectivity(scores), restored.update_connectivity(scores), strict=True
    ):
        assert np.array_equal(a, b)
    assert restored.get_config() == adaptive.get_config()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"prune_fraction": 1.5}, ValueError, "prune_fraction"),
        ({"prune_fraction": float("nan")}, ValueError, "prune_fraction"),
        ({"prune_fraction": "0.1"}, TypeError, "prune_fraction"),
        ({"growth_polarity": 0}, ValueError, "growth_polarity"),
        ({"growth_polarity": "excitatory"}, ValueError, "growth_polarity"),
        ({"seed": 2**32}, ValueError, "seed"),
        ({"connectivity_version": -1}, ValueError, "connectivity_version"),
        ({"base_wiring_or_units": "ncp"}, TypeError, "base_wiring_or_units"),
        ({"base_wiring_or_units": True}, TypeError, "base_wiring_or_units"),
        ({"base_wiring_or_units": 0}, ValueError, "base_wiring_or_units"),
        ({"base_wiring_or_units": {"class_name": "Random"}}, ValueError, "missing keys"),
        ({"base_wiring_or_units": Random(4), "output_dim": 2}, ValueError, "output_dim"),
        ({"base_wiring_or_units": Random(4), "sparsity_level": 0.2}, ValueError, "sparsity"),
        ({"sparsity_level": 1.0}, ValueError, "sparsity_level"),
    ],
)
def test_adaptive_wiring_rejects_bad_arguments(kwargs, error, message):
    args = {"base_wiring_or_units": 6, **kwargs}
    with pytest.raises(error, match=message):
        AdaptiveWiring(**args)


@pytest.mark.parametrize(
    "importance, growth, error, message",
    [
        (np.ones((5, 6)), None, ValueError, "importance_scores"),
        (np.ones(7), None, ValueError, "importance_scores"),
        (np.full((6, 6), np.inf), None, ValueError, "importance_scores must be finite"),
        (np.array(["a"] * 36).reshape(6, 6), None, TypeError, "importance_scores"),
        (np.ones((6, 6)), np.ones(36), ValueError, "growth_scores"),
        (np.ones((6, 6)), np.full((6, 6), np.nan), ValueError, "growth_scores must be finite"),
    ],
)
def test_update_connectivity_rejects_bad_scores_and_changes_nothing(
    importance, growth, error, message
):
    adaptive = AdaptiveWiring(6)
    before = adaptive.get_config()
    with pytest.raises(error, match=message):
        adaptive.update_connectivity(importance, growth)
    assert adaptive.get_config() == before


# ====================================================================== MetaWiring
def test_meta_wiring_numbers_output_then_fast_then_slow_neurons():
    wiring = MetaWiring(4, 5, 2)
    assert wiring.units == 11 and wiring.output_dim == 2
    assert wiring.group_names == ["output", "fast", "slow"]
    assert wiring.group("fast").tolist() == [2, 3, 4, 5]
    assert wiring.group("slow").tolist() == list(range(6, 11))
    assert [wiring.get_neurons_of_layer(i) for i in range(3)] == [
        list(range(6, 11)),
        [2, 3, 4, 5],
        [0, 1],
    ]
    assert MetaWiring(3, 3).output_dim == 1  # the MetaWiring(fast, slow) form


def test_meta_wiring_connects_exactly_the_documented_blocks_with_their_fan_ins():
    fast_n, slow_n, out_n, slow_fanin, fast_fanin, sensory_fanin = 6, 7, 3, 4, 2, 3
    wiring = MetaWiring(fast_n, slow_n, out_n, sensory_fanin, slow_fanin, fast_fanin, seed=5)
    wiring.build(5)
    groups = {name: wiring.group(name) for name in ("output", "fast", "slow")}
    fan_ins = {
        ("slow", "slow"): slow_fanin,
        ("slow", "fast"): slow_fanin,
        ("slow", "output"): slow_fanin,
        ("fast", "fast"): fast_fanin,
        ("fast", "output"): fast_fanin,
    }
    for source in groups:
        for target in groups:
            counts = (block(wiring, groups[source], groups[target]) != 0).sum(axis=0)
            assert (counts == fan_ins.get((source, target), 0)).all(), (source, target)
    sensory = (wiring.sensory_adjacency_matrix != 0).sum(axis=0)
    assert (sensory[groups["slow"]] == sensory_fanin).all()
    assert (sensory[np.concatenate([groups["output"], groups["fast"]])] == 0).all()
    expected = (slow_n + fast_n + out_n) * slow_fanin + (fast_n + out_n) * fast_fanin
    assert wiring.synapse_count == expected


def test_meta_wiring_draws_polarities_in_the_documented_order():
    fast_n, slow_n, out_n, input_dim, seed = 3, 4, 2, 3, 11
    wiring = MetaWiring(fast_n, slow_n, out_n, seed=seed)
    wiring.build(input_dim)
    output, fast, slow = np.arange(2), np.arange(2, 5), np.arange(5, 9)
    rng = np.random.default_rng(seed)
    expected = np.zeros((9, 9), np.int32)
    for sources, targets in (
        (slow, slow),
        (slow, fast),
        (slow, output),
        (fast, fast),
        (fast, output),
    ):
        draws = rng.choice([-1, 1, 1], size=sources.size * targets.size)
        expected[np.tile(sources, targets.size), np.repeat(targets, sources.size)] = draws
    assert np.array_equal(wiring.adjacency_matrix, expected)
    sensory = np.zeros((input_dim, 9), np.int32)
    draws = rng.choice([-1, 1, 1], size=input_dim * slow.size)
    sensory[np.tile(np.arange(input_dim), slow.size), np.repeat(slow, input_dim)] = draws
    assert np.array_equal(wiring.sensory_adjacency_matrix, sensory)


def test_fast_synapse_mask_marks_exactly_the_fast_to_fast_synapses():
    wiring = MetaWiring(5, 6, 2, slow_fanin=3, fast_fanin=3, seed=1)
    src, dst, _ = wiring.synapses()
    types = wiring.neuron_types()
    expected = [types[s] == "fast" and types[d] == "fast" for s, d in zip(src, dst, strict=True)]
    mask = wiring.fast_synapse_mask()
    assert mask.dtype == bool and mask.tolist() == expected
    assert mask.sum() == 5 * 3


def test_meta_wiring_exposes_the_hebbian_rule_parameters():
    wiring = MetaWiring(3, 3, decay=0.5, learning_rate=0.25)
    assert (wiring.decay, wiring.learning_rate) == (0.5, 0.25)
    assert (MetaWiring(3, 3).decay, MetaWiring(3, 3).learning_rate) == (0.9, 0.1)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"fast_neurons": 0}, ValueError, "fast_neurons"),
        ({"slow_neurons": 2.5}, TypeError, "slow_neurons"),
        ({"output_neurons": 0}, ValueError, "output_neurons"),
        ({"slow_fanin": 5}, ValueError, "slow_fanin"),
        ({"fast_fanin": 0}, ValueError, "fast_fanin"),
        ({"sensory_fanin": 0}, ValueError, "sensory_fanin"),
        ({"decay": 1.5}, ValueError, "decay"),
        ({"decay": None}, TypeError, "decay"),
        ({"learning_rate": -0.1}, ValueError, "learning_rate"),
        ({"learning_rate": float("inf")}, ValueError, "learning_rate"),
        ({"seed": 1.0}, TypeError, "seed"),
    ],
)
def test_meta_wiring_rejects_bad_arguments(kwargs, error, message):
    args = {"fast_neurons": 3, "slow_neurons": 4, **kwargs}
    with pytest.raises(error, match=message):
        MetaWiring(**args)


# ====================================================================== all three
MAKERS = {
    "routing": lambda seed=7: DynamicRoutingWiring(
        2, 3, 2, num_input_capsules=3, input_capsule_dim=2, sensory_fanin=2, seed=seed
    ),
    "adaptive": lambda seed=7: AdaptiveWiring(
        NCP(4, 3, 2, 2, 2, 3, 2, seed=seed), prune_fraction=0.2, seed=seed
    ),
    "meta": lambda seed=7: MetaWiring(3, 4, 2, 2, 3, 2, decay=0.8, learning_rate=0.05, seed=seed),
}


@pytest.mark.parametrize("name", MAKERS)
def test_built_wiring_round_trips_through_config_save_and_load(tmp_path, name):
    wiring = MAKERS[name]()
    wiring.build(4)
    config = wiring.get_config()
    restored = Wiring.from_config(json.loads(json.dumps(config)))
    wiring.save(tmp_path / "w.json")
    loaded = Wiring.load(tmp_path / "w.json")
    for copy in (restored, loaded):
        assert type(copy) is type(wiring)
        assert copy.get_config() == config
        assert np.array_equal(copy.adjacency_matrix, wiring.adjacency_matrix)
        assert np.array_equal(copy.sensory_adjacency_matrix, wiring.sensory_adjacency_matrix)


@pytest.mark.parametrize("name", MAKERS)
def test_unbuilt_config_restores_a_wiring_that_builds_like_the_original(name):
    wiring = MAKERS[name]()
    restored = Wiring.from_config(json.loads(json.dumps(wiring.get_config())))
    wiring.build(5)
    restored.build(5)
    assert restored.get_config() == wiring.get_config()


@pytest.mark.parametrize("name", MAKERS)
def test_seeds_decide_the_draws(name):
    same = [built(MAKERS[name](seed)).get_config() for seed in (3, 3)]
    assert same[0] == same[1]
    other = built(MAKERS[name](4))
    assert not (
        np.array_equal(other.adjacency_matrix, built(MAKERS[name](3)).adjacency_matrix)
        and np.array_equal(
            other.sensory_adjacency_matrix, built(MAKERS[name](3)).sensory_adjacency_matrix
        )
    )
    assert isinstance(MAKERS[name](np.random.default_rng(0)).get_config()["args"]["seed"], int)


@pytest.mark.parametrize("name", MAKERS)
def test_draw_graph_shows_one_legend_entry_per_neuron_group(name):
    wiring = built(MAKERS[name]())
    figure = plt.figure()
    labels = {handle.get_label() for handle in wiring.draw_graph()}
    groups = {f"{name.capitalize()} neurons" for name in wiring.neuron_types().tolist()}
    assert labels == {"Sensory neurons"} | groups
    plt.close(figure)


# ====================================================================== training
def _sine_task():
    rng = np.random.default_rng(0)
    t = 0.4 * np.arange(16)[None] + rng.uniform(0, 2 * np.pi, (8, 1))
    x = np.stack([np.sin(t), np.cos(t)], axis=-1).astype(np.float32)
    return mx.array(x), mx.array(np.sin(t + 0.8)[..., None].astype(np.float32))


@pytest.mark.parametrize("module", [LTC, CfC])
@pytest.mark.parametrize(
    "make",
    [
        lambda: DynamicRoutingWiring(2, 2, num_input_capsules=3, seed=1),
        lambda: MetaWiring(4, 6, 1, seed=1),
    ],
    ids=["routing", "meta"],
)
def test_liquid_networks_on_dynamic_wirings_learn_a_phase_shift(module, make):
    mx.random.seed(0)
    x, target = _sine_task()
    model = module(2, make())
    losses = train(model, lambda m: mx.mean((m(x)[0] - target) ** 2), 30, 0.02)
    assert np.all(np.isfinite(losses))
    assert losses[-1] <= losses[0] / 5, (losses[0], losses[-1])
