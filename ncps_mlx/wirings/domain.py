"""Domain wirings: circuits shaped like a filter bank, a convolutional network and a transformer.

* :class:`SignalProcessingWiring`: a dilated filter bank over a 1-D signal (scale ``i`` looks at
  the input with dilation ``2**i``), integrated from fine to coarse scales.
* :class:`VisionWiring`: feature maps of neurons with local receptive fields, downsampled from
  map to map, with skip connections; the pixels are the sensory inputs.
* :class:`LanguageWiring`: a stack of layers with block-diagonal (per-head) connections and a
  residual path; the token embedding is the sensory input.

Each is a :class:`~ncps_mlx.wirings.GroupedWiring` whose structured blocks are built with
vectorised index arithmetic (cost proportional to the synapses, no loop over neurons). The
sensory size is fixed by the constructor: ``build(input_dim)`` with another size is an error.
All random draws (polarities, sampled fan-ins) come from one ``np.random.default_rng(seed)``:
first the internal synapses in ``__init__``, in the order the docstrings list them, then the
sensory synapses in ``build``. Random polarities follow ncps's rule: +1 with probability 2/3.
Layers run in signal order with the output last; an LTC uses every synapse, a
:class:`~ncps_mlx.cells.WiredCfCCell` only those into the first layer from the sensory inputs
and between consecutive layers (not skips, nor sensory inputs or readouts of other layers).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, normalize_seed
from .grouped import GroupedWiring
from .patterns import connect, draw_polarity
from .sampling import sample_without_replacement

__all__ = ["SignalProcessingWiring", "VisionWiring", "LanguageWiring"]


class _FixedInputWiring(GroupedWiring):
    """A grouped wiring whose sensory size is fixed by a constructor argument.

    Subclasses call :meth:`_fix_input` in ``__init__``; they then own a seeded generator
    ``self._rng`` and may add a random readout with :meth:`_connect_readout`.
    """

    def _fix_input(self, input_dim: int, argument: str, seed) -> None:
        self._required_input_dim = input_dim
        self._input_argument = argument
        self._seed = normalize_seed(seed)
        self._rng = np.random.default_rng(self._seed)

    def set_input_dim(self, input_dim: int) -> None:
        """Set the sensory size, which must equal the one the constructor fixed.

        Raises:
            ValueError: If ``input_dim`` differs from the constructor's input size.
        """
        input_dim = check_int(input_dim, "input_dim", minimum=1)
        if input_dim != self._required_input_dim:
            raise ValueError(
                f"input_dim={input_dim} does not match {type(self).__name__}'s "
                f"{self._input_argument}, which needs input_dim={self._required_input_dim}"
            )
        super().set_input_dim(input_dim)

    def _connect_readout(self, sources: np.ndarray, fan_in: int | None) -> None:
        """``sources -> output``: all pairs, or ``fan_in`` sources drawn per output neuron."""
        connect(self, sources, self.group("output"), fan_in, polarity="random", rng=self._rng)


def _check_fan_in(value, name: str, limit: int) -> int | None:
    return None if value is None else check_int(value, name, minimum=1, maximum=limit)


def _random_polarity(rng: np.random.Generator, count: int) -> np.ndarray:
    return draw_polarity(count, "random", rng)


# ---------------------------------------------------------------------------- signal
class SignalProcessingWiring(_FixedInputWiring):
    r"""A dilated filter bank over a 1-D signal, integrated from fine to coarse scales.

    The sensory inputs are the ``L = input_size`` samples of a signal window (``input_dim`` must
    be ``L``). Neuron ids: ``output`` (``output_size``) first, then ``scale_0`` ...
    ``scale_{S-1}`` of ``N = neurons_per_scale`` neurons each. Neuron ``k`` of every scale sits
    at the input position :math:`c_k = \lfloor (2k+1) L / 2N \rfloor` (the middle of the
    ``k``-th of ``N`` equal segments; :math:`c_k = k` when ``N = L``). With the tap offsets
    :math:`o_j = j - \lfloor w/2 \rfloor`, ``j = 0..w-1`` (``w = window``; ``-1, 0, 1`` for 3):

    1. ``scale_i -> scale_{i+1}`` (``i = 0..S-2``): neuron ``k`` of scale ``i+1`` receives from
       neurons ``k + o_j`` of scale ``i`` (local fan-in ``w``, neurons outside ``0..N-1``
       dropped); random polarity.
    2. ``scale_* -> output``: every output neuron receives from every neuron of every scale, or
       from ``output_fan_in`` of them drawn uniformly; random polarity.
    3. sensory ``-> scale_i`` (at ``build``): neuron ``k`` of scale ``i`` reads the samples
       :math:`c_k + o_j 2^i` (dilation ``2**i``), positions outside ``0..L-1`` dropped (zero
       padding; the centre tap always exists); random polarity.

    Draws, in this order: the polarities of 1 (scale by scale, target neuron, then tap), the
    picks (if ``output_fan_in``) and polarities of 2 (output neuron, then source), and the
    polarities of 3 (scale, neuron, tap). Time scales: ``scale_i`` has ``2**i`` (coarse scales
    are slower), ``output`` 1. Layers: ``scale_0``, ..., ``scale_{S-1}``, ``output``.

    The wiring guide's ``SignalProcessingWiring(input_size, num_scales, neurons_per_scale)``
    works as written. The guide counts ``num_scales * neurons_per_scale`` units; here
    ``output_size`` readout neurons (default 1) come first, as motor neurons.

    Args:
        input_size (int): Signal length ``L`` (the sensory size).
        num_scales (int): Number of scales ``S``; ``2**(S-1) < L`` unless ``S = 1`` (a coarser
            scale would only see its centre sample).
        neurons_per_scale (int): Neurons per scale ``N``.
        output_size (int): Output (motor) neurons. Default 1.
        window (int): Taps per neuron ``w``, ``1 <= w <= L``. Default 3.
        output_fan_in (int, optional): Scale neurons feeding each output neuron (all if None).
        seed: Seed of the draws (int, None or a numpy Generator). Default 1111.
    """

    def __init__(
        self,
        input_size,
        num_scales,
        neurons_per_scale,
        output_size=1,
        window=3,
        output_fan_in=None,
        seed=1111,
    ):
        self.input_size = check_int(input_size, "input_size", minimum=1)
        self.num_scales = check_int(num_scales, "num_scales", minimum=1)
        if self.num_scales > 1 and 2 ** (self.num_scales - 1) >= self.input_size:
            raise ValueError(
                f"num_scales={num_scales} needs 2**(num_scales-1) < input_size={input_size}: "
                "the coarsest scale would only see its centre sample"
            )
        self.neurons_per_scale = check_int(neurons_per_scale, "neurons_per_scale", minimum=1)
        self.output_size = check_int(output_size, "output_size", minimum=1)
        self.window = check_int(window, "window", minimum=1, maximum=self.input_size)
        scale_units = self.num_scales * self.neurons_per_scale
        self.output_fan_in = _check_fan_in(output_fan_in, "output_fan_in", scale_units)
        super().__init__(self.output_size + scale_units)
        self._fix_input(self.input_size, "input_size", seed)
        scales = [f"scale_{i}" for i in range(self.num_scales)]
        self._define_groups(
            [("output", self.output_size)] + [(name, self.neurons_per_scale) for name in scales],
            [[name] for name in scales] + [["output"]],
            time_scales={name: 2.0**i for i, name in enumerate(scales)},
        )
        self._offsets = np.arange(self.window) - self.window // 2
        self._build_scale_integration()
        self._connect_readout(np.arange(self.output_size, self.units), self.output_fan_in)

    def centres(self) -> np.ndarray:
        """Input position of neuron ``k`` of each scale, shape ``(neurons_per_scale,)``."""
        k = np.arange(self.neurons_per_scale)
        return (2 * k + 1) * self.input_size // (2 * self.neurons_per_scale)

    def _build_scale_integration(self) -> None:
        n = self.neurons_per_scale
        target, source = _taps(np.arange(n), self._offsets, n)
        for i in range(self.num_scales - 1):
            lower, upper = self.group(f"scale_{i}"), self.group(f"scale_{i + 1}")
            self.add_synapses(
                lower[source], upper[target], _random_polarity(self._rng, source.size)
            )

    def _build_sensory_synapses(self) -> None:
        for i in range(self.num_scales):
            target, source = _taps(self.centres(), self._offsets * 2**i, self.input_size)
            neurons = self.group(f"scale_{i}")[target]
            self.add_sensory_synapses(source, neurons, _random_polarity(self._rng, source.size))

    def _config_args(self) -> dict:
        return {
            "input_size": self.input_size,
            "num_scales": self.num_scales,
            "neurons_per_scale": self.neurons_per_scale,
            "output_size": self.output_size,
            "window": self.window,
            "output_fan_in": self.output_fan_in,
            "seed": self._seed,
        }


def _taps(centres: np.ndarray, offsets: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """``(target, source)``: target ``t`` reads ``centres[t] + offsets`` inside ``[0, limit)``,
    ordered by target, then offset."""
    positions = centres[:, None] + offsets[None, :]
    valid = (positions >= 0) & (positions < limit)
    target = np.broadcast_to(np.arange(centres.size)[:, None], positions.shape)
    return target[valid], positions[valid]


# ---------------------------------------------------------------------------- vision
class VisionWiring(_FixedInputWiring):
    r"""Feature maps of neurons with local receptive fields, like a small convolutional network.

    The sensory inputs are the pixels of an ``H x W`` image with ``C_in = input_channels``
    channels, pixel ``(y, x, c)`` being input ``(y * W + x) * C_in + c`` (row-major ``(h, w,
    c)``; ``input_dim`` must be ``H * W * C_in``). Map ``l`` has ``C_l = channels[l]`` channels
    and one neuron per ``(h, w, c)``: map 0 is ``H x W``, map ``l+1`` is ``ceil(H_l / s) x
    ceil(W_l / s)`` (``s = stride``). Neuron ids: ``output`` first, then ``map_0``, ``map_1``,
    ... with neuron ``(h, w, c)`` of map ``l`` at ``start_l + (h * W_l + w) * C_l + c``
    (see :attr:`map_shapes`). With offsets :math:`o = -\lfloor k/2 \rfloor, ..., k - 1 -
    \lfloor k/2 \rfloor` (``k = kernel_size``; ``-1, 0, 1`` for 3):

    1. ``map_l -> map_{l+1}``: neuron ``(h, w, c)`` receives from neurons ``(h s + o_y, w s +
       o_x, c')`` of map ``l`` for all offsets and all ``c' < C_l`` (fan-in ``k * k * C_l``
       minus positions outside the map, which are dropped as zero padding); random polarity.
    2. ``map_l -> map_{l+2}`` if ``skip_connections``: neuron ``(h, w, c)`` receives from
       neurons ``(h s^2, w s^2, c')`` of map ``l`` (its receptive-field centre), all ``c'``
       (fan-in ``C_l``); excitatory.
    3. ``map_{last} -> output``: every output neuron receives from every neuron of the last map
       (global-pooling fan-in), or from ``output_fan_in`` of them drawn uniformly; random
       polarity.
    4. pixels ``-> map_0`` (at ``build``): neuron ``(h, w, c)`` receives pixels ``(h + o_y, w +
       o_x, c')``, all ``c' < C_in``, inside the image; random polarity.

    Random polarities are drawn in the order listed, within a block by target neuron id, then
    ``o_y``, ``o_x``, ``c'`` (picks before polarities for 3).

    The wiring guide's ``VisionWiring(input_height, input_width, channels, kernel_size=3)``
    works as written. The guide counts the feature maps' neurons only; here ``output_size``
    readout neurons (default 1) come first, as motor neurons.

    Args:
        input_height (int): Image height ``H``.
        input_width (int): Image width ``W``.
        channels (int | sequence of int): Channels of each feature map (an int: one map).
        kernel_size (int): Receptive-field side ``k``. Default 3.
        input_channels (int): Pixel channels ``C_in``. Default 1.
        stride (int): Downsampling factor ``s`` between consecutive maps. Default 2.
        skip_connections (bool): Add the ``map_l -> map_{l+2}`` synapses. Default True.
        output_size (int): Output (motor) neurons. Default 1.
        output_fan_in (int, optional): Last-map neurons feeding each output neuron (all if None).
        seed: Seed of the draws (int, None or a numpy Generator). Default 1111.
    """

    def __init__(
        self,
        input_height,
        input_width,
        channels,
        kernel_size=3,
        input_channels=1,
        stride=2,
        skip_connections=True,
        output_size=1,
        output_fan_in=None,
        seed=1111,
    ):
        self.input_height = check_int(input_height, "input_height", minimum=1)
        self.input_width = check_int(input_width, "input_width", minimum=1)
        self.channels = _check_channels(channels)
        self.kernel_size = check_int(kernel_size, "kernel_size", minimum=1)
        self.input_channels = check_int(input_channels, "input_channels", minimum=1)
        self.stride = check_int(stride, "stride", minimum=1)
        if not isinstance(skip_connections, bool):
            raise TypeError(f"skip_connections must be a bool, got {skip_connections!r}")
        self.skip_connections = skip_connections
        self.output_size = check_int(output_size, "output_size", minimum=1)
        height, width, self.map_shapes = self.input_height, self.input_width, []
        for count in self.channels:
            self.map_shapes.append((height, width, count))
            height, width = -(-height // self.stride), -(-width // self.stride)
        last = int(np.prod(self.map_shapes[-1]))
        self.output_fan_in = _check_fan_in(output_fan_in, "output_fan_in", last)
        sizes = [int(np.prod(shape)) for shape in self.map_shapes]
        super().__init__(self.output_size + sum(sizes))
        pixels = self.input_height * self.input_width * self.input_channels
        self._fix_input(pixels, "input_height * input_width * input_channels", seed)
        maps = [f"map_{i}" for i in range(len(sizes))]
        self._define_groups(
            [("output", self.output_size)] + list(zip(maps, sizes, strict=True)),
            [[name] for name in maps] + [["output"]],
        )
        self._build_maps()
        self._connect_readout(self.group(maps[-1]), self.output_fan_in)

    def _build_maps(self) -> None:
        shapes, k, s = self.map_shapes, self.kernel_size, self.stride
        for l in range(len(shapes) - 1):  # noqa: E741 (map index, as in the docstring)
            source, target = _local_field(shapes[l], shapes[l + 1], k, s)
            polarity = _random_polarity(self._rng, source.size)
            self._add_between_maps(l, l + 1, source, target, polarity)
        if self.skip_connections:
            for l in range(len(shapes) - 2):  # noqa: E741
                source, target = _local_field(shapes[l], shapes[l + 2], 1, s * s)
                self._add_between_maps(l, l + 2, source, target, 1)

    def _add_between_maps(self, low: int, high: int, source, target, polarity) -> None:
        lower, upper = self.group(f"map_{low}"), self.group(f"map_{high}")
        self.add_synapses(lower[source], upper[target], polarity)

    def _build_sensory_synapses(self) -> None:
        image = (self.input_height, self.input_width, self.input_channels)
        source, target = _local_field(image, self.map_shapes[0], self.kernel_size, 1)
        neurons = self.group("map_0")[target]
        self.add_sensory_synapses(source, neurons, _random_polarity(self._rng, source.size))

    def _config_args(self) -> dict:
        return {
            "input_height": self.input_height,
            "input_width": self.input_width,
            "channels": list(self.channels),
            "kernel_size": self.kernel_size,
            "input_channels": self.input_channels,
            "stride": self.stride,
            "skip_connections": self.skip_connections,
            "output_size": self.output_size,
            "output_fan_in": self.output_fan_in,
            "seed": self._seed,
        }


def _check_channels(channels) -> list[int]:
    if isinstance(channels, (list, tuple, np.ndarray)):
        if len(channels) == 0:
            raise ValueError("channels must name at least one feature map")
        return [check_int(c, f"channels[{i}]", minimum=1) for i, c in enumerate(channels)]
    return [check_int(channels, "channels", minimum=1)]


def _local_field(in_shape, out_shape, kernel_size: int, stride: int):
    """``(source, target)`` local ids: output ``(h, w, c)`` reads input ``(h*stride + o_y,
    w*stride + o_x, c')`` for every offset pair and input channel ``c'``, inside the input.

    Ordered by target id, then ``o_y``, ``o_x``, ``c'``; memory proportional to the pairs.
    """
    (in_h, in_w, in_c), (out_h, out_w, out_c) = in_shape, out_shape
    offsets = np.arange(kernel_size) - kernel_size // 2
    ys = np.arange(out_h)[:, None] * stride + offsets  # (out_h, k)
    xs = np.arange(out_w)[:, None] * stride + offsets  # (out_w, k)
    y = ys[:, None, None, :, None, None]  # axes: h, w, c, o_y, o_x, c'
    x = xs[None, :, None, None, :, None]
    inside = ((y >= 0) & (y < in_h)) & ((x >= 0) & (x < in_w))
    shape = (out_h, out_w, out_c, kernel_size, kernel_size, in_c)
    inside = np.broadcast_to(inside, shape)
    source = (y * in_w + x) * in_c + np.arange(in_c)
    target = np.arange(out_h * out_w * out_c).reshape(out_h, out_w, out_c, 1, 1, 1)
    return np.broadcast_to(source, shape)[inside], np.broadcast_to(target, shape)[inside]


# ---------------------------------------------------------------------------- language
class LanguageWiring(_FixedInputWiring):
    """A transformer-shaped stack: per-head blocks between layers and a residual path.

    The sensory inputs are the ``E = embedding_size`` features of a token embedding
    (``input_dim`` must be ``E``). Neuron ids: ``output`` (``output_size``, by default
    ``vocab_size``: one readout neuron per token, e.g. for next-token logits) first, then
    ``layer_0`` ... ``layer_{L-1}`` of ``D = hidden_size`` neurons each. Head ``h`` of a layer
    is its neurons ``h*d .. (h+1)*d - 1`` (``d = D / num_heads``).

    1. ``layer_l -> layer_{l+1}`` per head (``l = 0..L-2``): neuron ``j`` of head ``h`` of layer
       ``l+1`` receives from every neuron of head ``h`` of layer ``l`` (block diagonal, ``d``
       per neuron), or from ``head_fan_in`` of them drawn uniformly; random polarity.
    2. residual ``layer_l -> layer_{l+1}``: neuron ``j`` to neuron ``j``, excitatory (it
       overwrites the polarity of the same synapse of 1 if that exists).
    3. ``layer_{L-1} -> output``: every output neuron receives from every neuron of the last
       layer, or from ``output_fan_in`` of them drawn uniformly; random polarity.
    4. embedding ``-> layer_0`` (at ``build``): every feature to every neuron (heads mix here,
       as in a transformer's input projection, and at the readout); random polarity.

    Draws in the order listed: per layer pair the head picks (if ``head_fan_in``) then the
    polarities (by target neuron, then source); the readout's picks then polarities; the
    embedding polarities (by target neuron, then feature). Layers in signal order ``layer_0``,
    ..., ``layer_{L-1}``, ``output``; all time scales 1.

    The wiring guide's ``LanguageWiring(vocab_size, hidden_size, num_layers, num_heads)`` works
    as written. The guide counts ``hidden_size * num_layers`` units; here ``output_size``
    readout neurons (default ``vocab_size``) come first, as motor neurons.

    Args:
        vocab_size (int): Vocabulary size; the default ``output_size``.
        hidden_size (int): Neurons per layer ``D`` (divisible by ``num_heads``).
        num_layers (int): Number of layers ``L`` (stored as ``num_hidden_layers``; the Wiring
            property :attr:`num_layers` counts the output layer too: ``L + 1``).
        num_heads (int): Heads per layer.
        embedding_size (int, optional): Sensory size ``E`` (default ``hidden_size``).
        output_size (int, optional): Readout neurons (default ``vocab_size``).
        head_fan_in (int, optional): Sources per neuron within its head (all ``d`` if None).
        output_fan_in (int, optional): Last-layer neurons per output neuron (all if None).
        seed: Seed of the draws (int, None or a numpy Generator). Default 1111.
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        num_layers,
        num_heads,
        embedding_size=None,
        output_size=None,
        head_fan_in=None,
        output_fan_in=None,
        seed=1111,
    ):
        self.vocab_size = check_int(vocab_size, "vocab_size", minimum=1)
        self.hidden_size = check_int(hidden_size, "hidden_size", minimum=1)
        self.num_hidden_layers = check_int(num_layers, "num_layers", minimum=1)
        self.num_heads = check_int(num_heads, "num_heads", minimum=1, maximum=self.hidden_size)
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}"
            )
        self.head_size = self.hidden_size // self.num_heads
        self.embedding_size = check_int(
            self.hidden_size if embedding_size is None else embedding_size,
            "embedding_size",
            minimum=1,
        )
        self.output_size = check_int(
            self.vocab_size if output_size is None else output_size, "output_size", minimum=1
        )
        self.head_fan_in = _check_fan_in(head_fan_in, "head_fan_in", self.head_size)
        self.output_fan_in = _check_fan_in(output_fan_in, "output_fan_in", self.hidden_size)
        super().__init__(self.output_size + self.num_hidden_layers * self.hidden_size)
        self._fix_input(self.embedding_size, "embedding_size", seed)
        layers = [f"layer_{i}" for i in range(self.num_hidden_layers)]
        self._define_groups(
            [("output", self.output_size)] + [(name, self.hidden_size) for name in layers],
            [[name] for name in layers] + [["output"]],
        )
        self._build_layers()
        self._connect_readout(self.group(layers[-1]), self.output_fan_in)

    def _build_layers(self) -> None:
        d, fan_in = self.head_size, self.head_fan_in or self.head_size
        target = np.repeat(np.arange(self.hidden_size), fan_in)
        head_start = (target // d) * d
        for l in range(self.num_hidden_layers - 1):  # noqa: E741 (layer index, as in the docstring)
            lower, upper = self.group(f"layer_{l}"), self.group(f"layer_{l + 1}")
            picks = sample_without_replacement(self._rng, d, fan_in, rows=self.hidden_size)
            source = head_start + picks.reshape(-1)
            polarity = _random_polarity(self._rng, source.size)
            self.add_synapses(lower[source], upper[target], polarity)
            self.add_synapses(lower, upper, 1)

    def _build_sensory_synapses(self) -> None:
        embedding, first = range(self.embedding_size), self.group("layer_0")
        connect(self, embedding, first, polarity="random", rng=self._rng, sensory=True)

    def _config_args(self) -> dict:
        return {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_hidden_layers,
            "num_heads": self.num_heads,
            "embedding_size": self.embedding_size,
            "output_size": self.output_size,
            "head_fan_in": self.head_fan_in,
            "output_fan_in": self.output_fan_in,
            "seed": self._seed,
        }
