"""Built-in tasks: the long-memory data as specified, deterministic brief runs, exact parameter
counts, and runs that separate architectures that remember from ones that cannot."""

import numpy as np
import pytest

from ncps_mlx.explore import Architecture
from ncps_mlx.explore.tasks import TASKS, DigitsTask, LongMemoryTask, get_task

SMALL = LongMemoryTask(length=6, num_symbols=3, train_size=96, test_size=48, epochs=1)
ATTENTION = Architecture(("attention",), 16, {"attention_num_heads": 2})


def test_get_task_returns_the_builtin_tasks_and_lists_the_names_on_error():
    assert set(TASKS) == {"digits", "long_memory"}
    assert isinstance(get_task("digits"), DigitsTask)
    assert isinstance(get_task("long_memory"), LongMemoryTask)
    with pytest.raises(ValueError, match=r"'nope'.*\['digits', 'long_memory'\]"):
        get_task("nope")


def test_tasks_describe_their_data():
    digits, memory = get_task("digits"), get_task("long_memory")
    assert (digits.input_size, digits.num_classes, digits.metric) == (8, 10, "accuracy")
    assert (memory.input_size, memory.num_classes) == (5, 4)
    assert digits.higher_is_better and memory.higher_is_better
    data = digits.split(0)
    assert data.x_train.shape[1:] == (8, 8) and data.num_classes == 10


def test_long_memory_sequences_are_a_cue_then_one_hot_distractors():
    data = SMALL.split(seed=3)
    assert data.x_train.shape == (96, 6, 4) and data.x_test.shape == (48, 6, 4)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        symbols = x[..., :3]
        np.testing.assert_array_equal(symbols.sum(-1), 1.0)  # one symbol per step
        np.testing.assert_array_equal(np.argmax(symbols[:, 0], -1), y)  # label = first symbol
        np.testing.assert_array_equal(x[:, 0, 3], 1.0)  # the cue marker
        np.testing.assert_array_equal(x[:, 1:, 3], 0.0)
    assert data.num_classes == 3 and data.y_train.dtype == np.int32


def test_long_memory_labels_are_uniform_and_the_last_step_is_at_chance():
    task = LongMemoryTask(length=5, num_symbols=4, train_size=8000, test_size=1)
    data = task.split(seed=0)
    np.testing.assert_allclose(np.bincount(data.y_train) / 8000, 0.25, atol=0.02)
    last_symbol = np.argmax(data.x_train[:, -1, :4], -1)
    assert abs(np.mean(last_symbol == data.y_train) - 0.25) < 0.02


def test_long_memory_data_depend_on_the_seed_only():
    first, again, other = SMALL.split(1), SMALL.split(1), SMALL.split(2)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_train, other.x_train)


def test_evaluate_is_deterministic_for_a_seed_and_counts_stack_and_head():
    first = SMALL.evaluate(ATTENTION, seed=5)
    second = SMALL.evaluate(ATTENTION, seed=5)
    assert first.value == second.value and first.params == second.params
    head = ATTENTION.hidden_size * SMALL.num_classes + SMALL.num_classes
    assert first.params == ATTENTION.param_count(SMALL.input_size) + head
    assert first.epochs == 1 and first.seconds > 0
    assert SMALL.evaluate(ATTENTION, epochs=2, seed=5).epochs == 2


def test_long_memory_separates_attention_from_a_memoryless_stack():
    """A brief default run: attention finds the cue, per-step feed-forward layers see only
    the last (random) symbol and stay at chance (25 %)."""
    task = get_task("long_memory")
    attention = task.evaluate(Architecture(("attention",), 32), seed=0)
    memoryless = task.evaluate(Architecture(("ffn", "ffn"), 32), seed=0)
    assert attention.value > 0.9
    assert abs(memoryless.value - 0.25) < 0.08


def test_digits_brief_run_is_well_above_chance():
    result = get_task("digits").evaluate(Architecture(("mamba", "attention"), 32), seed=0)
    assert result.value > 0.8  # chance: 10 %
