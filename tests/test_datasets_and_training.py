"""Datasets (digits sequences, irregular sine), the classifier head and the training loop."""

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest

from ncps_mlx import LTC, CfC
from ncps_mlx.datasets import irregular_sine, load_digits_sequences, stratified_split
from ncps_mlx.training import evaluate_loss, fit
from ncps_mlx.training.batching import batches
from ncps_mlx.training.classifier import SequenceClassifier, accuracy, classification_loss
from ncps_mlx.wirings import AutoNCP


def test_digits_sequences_are_8_steps_of_8_pixels_with_a_stratified_split():
    data = load_digits_sequences(test_fraction=0.2, seed=3)
    assert data.x_train.shape[1:] == data.x_test.shape[1:] == (8, 8)
    assert len(data.y_train) + len(data.y_test) == 1797
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    counts_all = np.bincount(np.concatenate([data.y_train, data.y_test]))
    np.testing.assert_array_equal(np.bincount(data.y_test), np.round(0.2 * counts_all))
    again = load_digits_sequences(test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    other = load_digits_sequences(test_fraction=0.2, seed=4)
    assert not np.array_equal(other.y_test, data.y_test)


def test_stratified_split_partitions_the_indices():
    labels = np.repeat(np.arange(3), [10, 20, 30])
    train, test = stratified_split(labels, 0.5, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(60))
    np.testing.assert_array_equal(np.bincount(labels[test]), [5, 10, 15])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, float("nan")])
def test_stratified_split_rejects_fractions_outside_0_1(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(np.zeros(4), fraction, seed=0)


def test_irregular_sine_targets_are_the_quadrature_of_the_inputs():
    x, timespans, y = irregular_sine(5, 40, seed=1)
    assert x.shape == y.shape == (5, 40, 1) and timespans.shape == (5, 40)
    np.testing.assert_allclose(x**2 + y**2, 1.0, atol=1e-6)
    assert 0.05 <= timespans.min() and timespans.max() <= 0.6
    np.testing.assert_array_equal(irregular_sine(5, 40, seed=1)[0], x)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_sequences": 0, "length": 3}, "num_sequences"),
        ({"num_sequences": 2, "length": 3, "min_gap": 0.0}, "min_gap"),
        ({"num_sequences": 2, "length": 3, "min_gap": 1.0, "max_gap": 0.5}, "min_gap"),
        ({"num_sequences": 2, "length": 3, "noise": -1.0}, "noise"),
    ],
)
def test_irregular_sine_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        irregular_sine(**kwargs)


def test_classifier_reads_the_last_valid_output():
    mx.random.seed(0)
    rnn = CfC(3, AutoNCP(12, 4, seed=1))
    model = SequenceClassifier(rnn, 5)
    x = mx.random.normal((2, 6, 3))
    outputs, _ = rnn(x)
    np.testing.assert_allclose(np.array(model(x)), np.array(model.head(outputs[:, -1])), atol=1e-6)
    mask = mx.array([[True] * 6, [True] * 4 + [False] * 2])
    short, _ = rnn(x[1:, :4])
    np.testing.assert_allclose(
        np.array(model(x, mask=mask)[1]), np.array(model.head(short[0, -1])), atol=1e-5
    )


def test_classifier_uses_the_projected_size_and_rejects_last_step_modules():
    assert SequenceClassifier(CfC(3, 8, proj_size=5), 2).head.weight.shape == (2, 5)
    assert SequenceClassifier(LTC(3, 6), 2).head.weight.shape == (2, 6)
    with pytest.raises(ValueError, match="return_sequences=True"):
        SequenceClassifier(CfC(3, 8, return_sequences=False), 2)
    with pytest.raises(TypeError, match="output_size"):
        SequenceClassifier(nn.Linear(3, 3), 2)
    with pytest.raises(ValueError, match="num_classes"):
        SequenceClassifier(CfC(3, 8), 1)


def test_batches_follow_the_order_and_keep_the_remainder():
    x, y = np.arange(10).reshape(5, 2), np.arange(5)
    got = list(batches((x, y), 2, order=np.array([4, 3, 2, 1, 0])))
    assert [b[1].tolist() for b in got] == [[4, 3], [2, 1], [0]]
    np.testing.assert_array_equal(np.array(got[0][0]), x[[4, 3]])


def _regression_task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    return x, (x @ rng.normal(size=(5, 1))).astype(np.float32)


def _mse(model, x, y):
    return ((model(x) - y) ** 2).mean()


def test_fit_equals_a_hand_written_loop_with_the_same_batches():
    x, y = _regression_task()
    mx.random.seed(1)
    model = nn.Linear(5, 1)
    reference = nn.Linear(5, 1)
    reference.update(model.parameters())
    history = fit(
        model, _mse, optim.SGD(0.1), (x, y), epochs=2, batch_size=16, seed=7, progress=False
    )

    optimizer, rng = optim.SGD(0.1), np.random.default_rng(7)
    loss_and_grad = nn.value_and_grad(reference, _mse)
    losses = []
    for _ in range(2):
        order = rng.permutation(64)
        for start in range(0, 64, 16):
            rows = order[start : start + 16]
            loss, grads = loss_and_grad(reference, mx.array(x[rows]), mx.array(y[rows]))
            optimizer.update(reference, grads)
            losses.append(loss.item())
    np.testing.assert_allclose(history.step_losses, losses, rtol=1e-6)
    np.testing.assert_allclose(np.array(model.weight), np.array(reference.weight), rtol=1e-6)
    assert [e["epoch"] for e in history.epochs] == [1, 2]
    np.testing.assert_allclose(
        history.series("train_loss"), [np.mean(losses[:4]), np.mean(losses[4:])], rtol=1e-6
    )


def test_fit_records_validation_loss_and_metrics_each_epoch():
    x, y = _regression_task()
    model = nn.Linear(5, 1)
    calls = []
    history = fit(
        model,
        _mse,
        optim.Adam(0.05),
        (x, y),
        val_data=(x[:10], y[:10]),
        epochs=3,
        metrics={"calls": lambda m: len(calls.append(1) or calls)},
        progress=False,
    )
    assert history.series("calls") == [1.0, 2.0, 3.0]
    assert history.series("val_loss")[-1] == pytest.approx(
        evaluate_loss(model, _mse, (x[:10], y[:10]))
    )
    assert history.series("val_loss")[-1] < history.series("val_loss")[0]


@pytest.mark.parametrize(
    "train_data,kwargs,error,match",
    [
        ([], {}, TypeError, "train_data"),
        ((np.zeros((3, 2)), np.zeros(4)), {}, ValueError, "same first axis"),
        ((np.zeros((0, 2)), np.zeros(0)), {}, ValueError, "empty"),
        ((np.zeros((3, 5)), np.zeros((3, 1))), {"epochs": 0}, ValueError, "epochs"),
        ((np.zeros((3, 5)), np.zeros((3, 1))), {"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_fit_rejects_bad_data_and_settings(train_data, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(nn.Linear(5, 1), _mse, optim.SGD(0.1), train_data, progress=False, **kwargs)


def test_fit_shows_a_progress_bar_with_loss_and_throughput(capsys):
    x, y = _regression_task()
    fit(nn.Linear(5, 1), _mse, optim.SGD(0.1), (x, y), epochs=1, batch_size=32)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "train_loss=" in err and "step/s" in err


def test_a_cfc_classifier_learns_digits_in_a_few_epochs():
    data = load_digits_sequences(seed=0)
    mx.random.seed(0)
    model = SequenceClassifier(CfC(8, AutoNCP(24, 10, seed=0)), 10)
    before = accuracy(model, data.x_test, data.y_test)
    history = fit(
        model,
        classification_loss,
        optim.Adam(0.01),
        (data.x_train, data.y_train),
        epochs=3,
        progress=False,
    )
    after = accuracy(model, data.x_test, data.y_test)
    assert history.series("train_loss")[-1] < 0.6 * history.series("train_loss")[0]
    assert after > 0.6 > before


def test_fit_weights_the_epoch_loss_by_batch_size():
    x, y = _regression_task()
    history = fit(
        nn.Linear(5, 1), _mse, optim.SGD(0.0), (x[:10], y[:10]), batch_size=4, progress=False
    )
    expected = np.average(history.step_losses, weights=[4, 4, 2])
    assert history.epochs[0]["train_loss"] == pytest.approx(expected, rel=1e-6)
