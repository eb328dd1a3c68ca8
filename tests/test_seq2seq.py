"""LiquidSeq2Seq: teacher forcing, cached generation, sampling, beam search, training."""

import itertools
import math

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest

from ncps_mlx.hybrid.layers.self_attention import ROPE_MAX_ROWS
from ncps_mlx.hybrid.models.seq2seq import LiquidSeq2Seq, _filter_logits, _reverse_prefixes
from ncps_mlx.training import fit
from ncps_mlx.wirings import AutoNCP, FullyConnected

START, END, VOCAB = 10, 11, 12


def small_model(**kwargs):
    mx.random.seed(0)
    options = dict(
        d_model=16,
        num_layers=2,
        num_heads=2,
        encoder_units=AutoNCP(12, 4, seed=1),
        bidirectional=True,
        source_vocab_size=10,
    )
    options.update(kwargs)
    model = LiquidSeq2Seq(6, VOCAB, **options)
    mx.eval(model.parameters())
    return model


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def source():
    return mx.array(np.random.default_rng(0).integers(0, 10, (3, 5)), dtype=mx.int32)


def test_teacher_forcing_equals_decoding_one_cached_position_at_a_time(model, source):
    target = mx.array(np.random.default_rng(1).integers(0, VOCAB, (3, 6)), dtype=mx.int32)
    logits = model(source, target)
    assert logits.shape == (3, 6, VOCAB)
    heads = model.memory_heads(model.encode(source))
    caches, steps = None, []
    for t in range(6):
        step_logits, caches = model.decode(target[:, t : t + 1], heads, caches=caches)
        steps.append(step_logits[:, 0])
    np.testing.assert_allclose(np.array(mx.stack(steps, 1)), np.array(logits), atol=1e-5)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"temperature": 0.8, "seed": 3},
        {"temperature": 1.2, "top_k": 3, "seed": 4},
        {"temperature": 1.0, "top_p": 0.6, "seed": 5},
        {"num_beams": 3},
    ],
    ids=["greedy", "sample", "top_k", "top_p", "beam"],
)
def test_cached_and_uncached_decoding_give_the_same_tokens(model, source, settings):
    cached = model.generate(source, START, END, max_length=8, **settings)
    uncached = model.generate(source, START, END, max_length=8, use_cache=False, **settings)
    np.testing.assert_array_equal(np.array(cached), np.array(uncached))


@pytest.mark.parametrize("use_cache", [True, False], ids=["cached", "uncached"])
def test_generation_gives_no_op_an_empty_array_or_a_rope_batch_cuda_cannot_launch(
    model, use_cache, monkeypatch
):
    """MLX 0.32's CUDA RoPE kernel cannot launch over 128+ rows of heads at one position
    ("cudaGraphAddKernelNode ... invalid argument"), and empty operands are best kept from GPU
    kernels too: record every call of the ops generation builds its state with (70 rows, x3
    with beams, so RoPE must be sliced)."""
    calls = []

    def recording(function):
        def record(first, *args, **kwargs):
            arrays = first if isinstance(first, list) else [first, *args]
            arrays = [a for a in arrays if isinstance(a, mx.array)]
            calls.append((function.__name__, [a.shape for a in arrays]))
            return function(first, *args, **kwargs)

        return record

    for namespace, name in [(mx, "concatenate"), (mx, "take_along_axis"), (mx.fast, "rope")]:
        monkeypatch.setattr(namespace, name, recording(getattr(namespace, name)))
    source = mx.array(np.random.default_rng(2).integers(0, 10, (70, 5)), dtype=mx.int32)
    for settings in [
        {},
        {"temperature": 1.0, "top_k": 3, "top_p": 0.9, "seed": 1},
        {"num_beams": 3},
    ]:
        tokens = model.generate(source, START, END, max_length=4, use_cache=use_cache, **settings)
        assert tokens.shape[0] == 70 and 1 <= tokens.shape[1] <= 4
    assert {name for name, _ in calls} == {"concatenate", "take_along_axis", "rope"}
    for name, shapes in calls:
        assert all(math.prod(shape) > 0 for shape in shapes), (name, shapes)
        if name == "rope":
            assert shapes[0][0] * -(-shapes[0][1] // 4) <= ROPE_MAX_ROWS


def test_greedy_equals_top_k_1_and_a_single_beam(model, source):
    greedy = np.array(model.generate(source, START, max_length=8))
    assert greedy.shape == (3, 8) and greedy.dtype == np.int32
    top1 = model.generate(source, START, max_length=8, temperature=1.5, top_k=1, seed=9)
    np.testing.assert_array_equal(np.array(top1), greedy)
    np.testing.assert_array_equal(
        np.array(model.generate(source, START, max_length=8, num_beams=1)), greedy
    )


def test_greedy_tokens_are_the_argmax_of_teacher_forced_logits(model, source):
    tokens = model.generate(source, START, max_length=6)
    inputs = mx.concatenate([mx.full((3, 1), START, mx.int32), tokens[:, :-1]], axis=1)
    np.testing.assert_array_equal(np.array(mx.argmax(model(source, inputs), -1)), np.array(tokens))


def test_sampling_is_reproducible_with_a_seed_and_varies_without(model, source):
    first = model.generate(source, START, max_length=10, temperature=1.0, seed=7)
    again = model.generate(source, START, max_length=10, temperature=1.0, seed=7)
    other = model.generate(source, START, max_length=10, temperature=1.0, seed=8)
    np.testing.assert_array_equal(np.array(first), np.array(again))
    assert not np.array_equal(np.array(first), np.array(other))


def test_generation_stops_at_the_end_token_and_repeats_it():
    model = small_model()
    source = mx.zeros((2, 4), mx.int32)
    # Use the token an untrained model emits second as the end token.
    free = np.array(model.generate(source, START, max_length=5))
    end_token = int(free[0, 1])
    tokens = np.array(model.generate(source, START, end_token, max_length=12))
    for row, free_row in zip(tokens, free, strict=True):
        first_end = list(row).index(end_token)
        assert (row[first_end:] == end_token).all()
        np.testing.assert_array_equal(row[: first_end + 1], free_row[: first_end + 1])
    assert tokens.shape[1] < 12  # every row ended, so generation stopped early


def test_beam_search_with_enough_beams_finds_the_most_likely_sequence():
    """With beams >= V^(L-1) beam search is exhaustive: compare with scoring every sequence."""
    mx.random.seed(2)
    model = LiquidSeq2Seq(3, 4, d_model=8, num_layers=1, num_heads=2, encoder_units=6)
    source = mx.random.normal((2, 4, 3))
    beam = np.array(model.generate(source, 0, max_length=3, num_beams=16))
    candidates = np.array(list(itertools.product(range(4), repeat=3)), dtype=np.int32)
    for row in range(2):
        src = mx.repeat(source[row : row + 1], len(candidates), axis=0)
        inputs = np.concatenate([np.zeros((len(candidates), 1), np.int32), candidates[:, :2]], 1)
        log_probs = nn.log_softmax(model(src, mx.array(inputs)), axis=-1)
        scores = mx.take_along_axis(log_probs, mx.array(candidates)[..., None], -1).sum((1, 2))
        np.testing.assert_array_equal(beam[row], candidates[int(mx.argmax(scores).item())])


def test_beam_search_beats_or_equals_greedy_in_log_probability(model, source):
    def log_prob(tokens):
        inputs = mx.concatenate([mx.full((3, 1), START, mx.int32), tokens[:, :-1]], axis=1)
        log_probs = nn.log_softmax(model(source, inputs), axis=-1)
        return np.array(mx.take_along_axis(log_probs, tokens[..., None], -1).sum((1, 2)))

    greedy = model.generate(source, START, max_length=6)
    beam = model.generate(source, START, max_length=6, num_beams=4)
    assert (log_prob(beam) >= log_prob(greedy) - 1e-5).all()


def test_filter_logits_keeps_the_top_k_and_the_nucleus():
    logits = mx.log(mx.array([[0.1, 0.4, 0.05, 0.3, 0.15]]))
    kept = lambda out: np.isfinite(np.array(out))[0].tolist()  # noqa: E731
    assert kept(_filter_logits(logits, 2, None)) == [False, True, False, True, False]
    # Sorted: 0.4, 0.3, 0.15, 0.1, 0.05; mass before each: 0, .4, .7, .85, .95.
    assert kept(_filter_logits(logits, None, 0.7)) == [False, True, False, True, False]
    assert kept(_filter_logits(logits, None, 0.71)) == [False, True, False, True, True]
    assert kept(_filter_logits(logits, None, 0.01)) == [False, True, False, False, False]
    assert kept(_filter_logits(logits, 1, 1.0)) == [False, True, False, False, False]


def test_reverse_prefixes_reverses_valid_steps_only_and_is_an_involution():
    x = mx.arange(10).reshape(2, 5)
    lengths = mx.array([5, 3])
    reversed_ = _reverse_prefixes(x, lengths)
    assert np.array(reversed_).tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    np.testing.assert_array_equal(np.array(_reverse_prefixes(reversed_, lengths)), np.array(x))


def test_a_padded_bidirectional_encoding_equals_the_unpadded_one(model):
    rng = np.random.default_rng(3)
    source = mx.array(rng.integers(0, 10, (2, 6)), dtype=mx.int32)
    mask = mx.array([[True] * 6, [True] * 4 + [False] * 2])
    spans = mx.array(rng.uniform(0.5, 2.0, (2, 6)), dtype=mx.float32)
    padded = model.encode(source, mask, timespans=spans)
    alone = model.encode(source[1:, :4], timespans=spans[1:, :4])
    np.testing.assert_allclose(np.array(padded[1, :4]), np.array(alone[0]), atol=1e-5)
    target = mx.full((2, 1), START, mx.int32)
    np.testing.assert_allclose(
        np.array(model(source, target, mask, spans)[1]),
        np.array(model(source[1:, :4], target[1:], timespans=spans[1:, :4])[0]),
        atol=1e-5,
    )


def test_feature_sources_ltc_encoders_and_wired_decoders_work():
    mx.random.seed(0)
    decoder_wiring = FullyConnected(16)
    decoder_wiring.build(16)
    model = LiquidSeq2Seq(
        3,
        7,
        d_model=16,
        num_heads=2,
        encoder="ltc",
        encoder_units=AutoNCP(10, 3),
        wiring=decoder_wiring,
        tie_embeddings=True,
        ode_unfolds=2,
    )
    source = mx.random.normal((2, 5, 3))
    assert model(source, mx.zeros((2, 4), mx.int32), timespans=0.5).shape == (2, 4, 7)
    assert model.generate(source, 0, max_length=3, timespans=0.5).shape == (2, 3)
    assert "output_projection" not in model


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda m: m.encode(mx.zeros((2, 5, 6))), ValueError, "token ids"),
        (
            lambda m: m.encode(mx.zeros((2, 5), mx.int32), mx.ones((2, 4), mx.bool_)),
            ValueError,
            "source_mask",
        ),
        (
            lambda m: m.encode(mx.zeros((2, 3), mx.int32), mx.array([[True, False, True]] * 2)),
            ValueError,
            "prefix",
        ),
        (lambda m: m(mx.zeros((2, 3), mx.int32), mx.zeros((2, 3))), ValueError, "target"),
        (lambda m: m.generate(mx.zeros((1, 3), mx.int32), START, VOCAB), ValueError, "end_token"),
        (lambda m: m.generate(mx.zeros((1, 3), mx.int32), -1), ValueError, "start_token"),
        (
            lambda m: m.generate(mx.zeros((1, 3), mx.int32), START, temperature=-1.0),
            ValueError,
            "temperature",
        ),
        (
            lambda m: m.generate(mx.zeros((1, 3), mx.int32), START, temperature=1.0, top_p=0.0),
            ValueError,
            "top_p",
        ),
        (
            lambda m: m.generate(mx.zeros((1, 3), mx.int32), START, temperature=1.0, top_k=0),
            ValueError,
            "top_k",
        ),
        (
            lambda m: m.generate(mx.zeros((1, 3), mx.int32), START, num_beams=2, temperature=1.0),
            ValueError,
            "beam search",
        ),
        (
            lambda m: m.generate(mx.zeros((1, 3), mx.int32), START, max_length=0),
            ValueError,
            "max_length",
        ),
    ],
)
def test_bad_inputs_raise_errors_naming_the_argument(model, call, error, match):
    with pytest.raises(error, match=match):
        call(model)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"encoder": "gru"}, ValueError, "encoder"),
        ({"encoder_units": True}, TypeError, "encoder_units"),
        ({"return_sequences": False}, ValueError, "return_sequences"),
        ({"d_model": 15, "num_heads": 2}, ValueError, "divisible"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        LiquidSeq2Seq(4, 8, **kwargs)


def reversal_data(rng, count, length):
    """Digit sequences and their reversals (decoder inputs start with START, labels end with
    END)."""
    source = rng.integers(0, 10, (count, length)).astype(np.int32)
    reversed_ = source[:, ::-1]
    inputs = np.concatenate([np.full((count, 1), START), reversed_], 1).astype(np.int32)
    labels = np.concatenate([reversed_, np.full((count, 1), END)], 1).astype(np.int32)
    return source, inputs, labels


@pytest.mark.slow
def test_learns_to_reverse_sequences_to_95_percent_token_accuracy():
    rng = np.random.default_rng(0)
    train_data, (source, _, labels) = reversal_data(rng, 4000, 6), reversal_data(rng, 200, 6)
    mx.random.seed(0)
    model = LiquidSeq2Seq(
        16,
        VOCAB,
        d_model=32,
        num_layers=1,
        num_heads=4,
        encoder_units=32,
        bidirectional=True,
        source_vocab_size=10,
    )

    def loss_fn(model, source, inputs, labels):
        return nn.losses.cross_entropy(model(source, inputs), labels, reduction="mean")

    optimizer = optim.Adam(learning_rate=optim.cosine_decay(3e-3, 3 * 63, 1e-4))
    fit(model, loss_fn, optimizer, train_data, epochs=3, batch_size=64, progress=False)
    tokens = np.array(model.generate(mx.array(source), START, END, max_length=7))
    accuracy = (tokens[:, :6] == labels[:, :6]).mean()
    assert accuracy >= 0.95
    assert (tokens[:, 6] == END).mean() >= 0.95
