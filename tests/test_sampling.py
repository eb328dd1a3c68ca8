"""Specification of seed normalisation and uniform sampling without replacement.

Uniformity is checked with Pearson's chi-square statistic on a fixed seed: for ``m`` equally
likely outcomes the statistic is compared with the 0.999 quantile of the chi-square
distribution with ``m - 1`` degrees of freedom (values below, from standard tables), so a
correct sampler fails with probability 1e-3 on a random seed and deterministically passes or
fails on the fixed one.
"""

import itertools
import math

import numpy as np
import pytest

from ncps_mlx._validation import normalize_seed
from ncps_mlx.wirings import EXACT_DRAW_LIMIT
from ncps_mlx.wirings.sampling import sample_without_replacement

CHI2_999 = {14: 36.12, 19: 43.82, 34: 65.25, 49: 85.35}  # 0.999 quantiles by degrees of freedom


def chi_square(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


# ---------------------------------------------------------------- basic contract

BRANCHES = {
    "k_zero": (10, 0, 3),
    "k_equals_population": (7, 7, 4),
    "more_than_half": (10, 7, 50),  # 2k > population: k smallest random keys
    "one_row": (1000, 37, 1),  # 2k <= population, rows == 1: single-sort path
    "many_rows": (1000, 37, 200),  # 2k <= population: redraw duplicates per row
    "exactly_half": (40, 20, 30),  # 2k == population: still the redraw path
    "population_one": (1, 1, 5),
    "k_one": (5, 1, 100),
}


@pytest.mark.parametrize("population, k, rows", list(BRANCHES.values()), ids=list(BRANCHES))
def test_each_row_is_k_distinct_sorted_integers_in_range(population, k, rows):
    sample = sample_without_replacement(np.random.default_rng(0), population, k, rows)
    assert sample.shape == (rows, k)
    assert sample.dtype == np.int64
    if k:
        assert sample.min() >= 0 and sample.max() < population
        assert np.all(np.diff(sample, axis=1) > 0)  # sorted and distinct


def test_k_zero_gives_empty_rows():
    sample = sample_without_replacement(np.random.default_rng(0), 10, 0, 3)
    assert sample.shape == (3, 0)


def test_k_equal_to_population_gives_the_whole_population_in_every_row():
    sample = sample_without_replacement(np.random.default_rng(0), 6, 6, 2)
    np.testing.assert_array_equal(sample, [list(range(6))] * 2)
    sample[0, 0] = 99  # the rows are a writable copy, not a shared broadcast view
    assert sample[1, 0] == 0


def test_zero_rows_gives_an_empty_array():
    assert sample_without_replacement(np.random.default_rng(0), 10, 3, 0).shape == (0, 3)


@pytest.mark.parametrize("k", [-1, 11])
def test_k_outside_zero_to_population_raises_naming_k(k):
    with pytest.raises(ValueError, match=rf"k must be in \[0, population=10\], got {k}"):
        sample_without_replacement(np.random.default_rng(0), 10, k)


def test_same_generator_seed_gives_the_same_sample():
    first = sample_without_replacement(np.random.default_rng(5), 10_000, 300, 20)
    second = sample_without_replacement(np.random.default_rng(5), 10_000, 300, 20)
    np.testing.assert_array_equal(first, second)


def test_rows_are_drawn_independently():
    sample = sample_without_replacement(np.random.default_rng(1), 10_000, 50, 40)
    assert len({tuple(row) for row in sample.tolist()}) == 40


def test_large_sparse_draw_is_cheap_in_memory():
    # A population of 10**12 cannot be enumerated; the sampler must scale with k only.
    sample = sample_without_replacement(np.random.default_rng(2), 10**12, 100_000)
    assert sample.shape == (1, 100_000)
    assert np.all(np.diff(sample[0]) > 0)
    assert sample.max() < 10**12


# ---------------------------------------------------------------- uniformity


def subset_counts(samples: np.ndarray, population: int, k: int) -> np.ndarray:
    index = {subset: i for i, subset in enumerate(itertools.combinations(range(population), k))}
    counts = np.zeros(len(index))
    for row in samples.tolist():
        counts[index[tuple(row)]] += 1
    return counts


@pytest.mark.parametrize(
    "population, k",
    [(6, 2), (6, 4), (7, 3)],
    ids=["redraw_path", "keys_path", "odd_population"],
)
def test_every_k_subset_is_equally_likely_over_many_rows(population, k):
    rng = np.random.default_rng(123)
    samples = sample_without_replacement(rng, population, k, rows=12_000)
    counts = subset_counts(samples, population, k)
    assert counts.size == math.comb(population, k)
    assert chi_square(counts) < CHI2_999[counts.size - 1]


def test_every_k_subset_is_equally_likely_with_one_row_per_call():
    rng = np.random.default_rng(7)
    samples = np.concatenate([sample_without_replacement(rng, 6, 3, rows=1) for _ in range(6000)])
    counts = subset_counts(samples, 6, 3)  # 20 subsets, about 300 draws each
    assert chi_square(counts) < CHI2_999[19]


@pytest.mark.parametrize("rows, calls", [(20_000, 1), (1, 4000)], ids=["many_rows", "one_row"])
def test_every_element_is_equally_likely_for_a_larger_population(rows, calls):
    population, k = 50, 10
    rng = np.random.default_rng(99)
    samples = np.concatenate(
        [sample_without_replacement(rng, population, k, rows) for _ in range(calls)]
    )
    counts = np.bincount(samples.reshape(-1), minlength=population)
    assert counts.sum() == samples.shape[0] * k
    # Counts within a row are negatively correlated, which only lowers the statistic.
    assert chi_square(counts) < CHI2_999[49]
    expected = samples.shape[0] * k / population
    assert np.all(np.abs(counts - expected) < 0.1 * expected)


def test_first_and_last_positions_are_not_biased_to_the_ends():
    # The smallest element of a uniform 5-subset of 0..34 takes value j with probability
    # C(34 - j, 4) / C(35, 5); compare the empirical distribution of the minimum with it.
    population, k, rows = 35, 5, 40_000
    samples = sample_without_replacement(np.random.default_rng(4), population, k, rows)
    counts = np.bincount(samples[:, 0], minlength=population)
    expected = np.array(
        [math.comb(population - 1 - j, k - 1) for j in range(population)]
    ) / math.comb(population, k)
    keep = expected * rows >= 5  # Pearson's rule of thumb for the tail bins
    tail = rows * expected[~keep].sum()
    observed = np.append(counts[keep], counts[~keep].sum())
    expected_counts = np.append(rows * expected[keep], tail)
    statistic = float(((observed - expected_counts) ** 2 / expected_counts).sum())
    assert observed.size - 1 <= 34
    assert statistic < CHI2_999[34]


# ---------------------------------------------------------------- seeds


@pytest.mark.parametrize("seed", [0, 1, 22222, 2**32 - 1, np.int64(7), np.uint32(9)])
def test_integer_seeds_pass_through_unchanged(seed):
    result = normalize_seed(seed)
    assert result == int(seed)
    assert type(result) is int


def test_none_seed_gives_a_fresh_python_int_below_two_to_the_32():
    seeds = [normalize_seed(None) for _ in range(4)]
    assert all(type(seed) is int and 0 <= seed < 2**32 for seed in seeds)
    assert len(set(seeds)) > 1  # four equal draws from 2**32 values: probability ~1e-28


def test_generator_seed_is_one_reproducible_draw_from_the_generator():
    first = normalize_seed(np.random.default_rng(42))
    assert first == normalize_seed(np.random.default_rng(42))
    assert first == int(np.random.default_rng(42).integers(0, 2**32))
    assert type(first) is int and 0 <= first < 2**32


def test_generator_seed_advances_the_generator():
    generator = np.random.default_rng(42)
    assert normalize_seed(generator) != normalize_seed(generator)


@pytest.mark.parametrize("seed", [1.5, 1.0, "1", True, [1], np.random.RandomState(0)])
def test_other_seed_types_raise_type_error_naming_the_argument(seed):
    with pytest.raises(TypeError, match="random_seed must be an int, None or a numpy Generator"):
        normalize_seed(seed, "random_seed")


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64])
def test_integer_seeds_outside_the_32_bit_range_raise_value_error(seed):
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*32\)"):
        normalize_seed(seed)


def test_exact_draw_limit_is_two_to_the_24_candidate_pairs():
    assert EXACT_DRAW_LIMIT == 2**24
