"""ncps 1.0.1's wiring configs, in both directions: the dicts its ``get_config()`` returns.

ncps stores ``FullyConnected``, ``Random``, ``NCP`` and ``AutoNCP`` as their constructor
arguments, and its base ``Wiring`` as dense adjacency matrices; ncps_mlx's own
:meth:`~ncps_mlx.wirings.Wiring.get_config` stores the class, its arguments and the synapse list.
The formats are told apart by their keys: ours always has ``class_name``, ``args`` and
``synapses``, which no ncps config has, and each ncps class has its own exact key set
(:data:`NCPS_CONFIG_KEYS`), so a dict is read as one ncps class or rejected, never guessed.
:meth:`Wiring.from_config <ncps_mlx.wirings.Wiring.from_config>` and :meth:`Wiring.load
<ncps_mlx.wirings.Wiring.load>` accept both formats: an ncps dict goes through
:meth:`Wiring.from_ncps_config <ncps_mlx.wirings.Wiring.from_ncps_config>`, which turns it with
:func:`translate_ncps_config` into our class's constructor call (or, for ncps's base ``Wiring``,
our config) and makes the wiring. This module works on dicts and on a wiring's public methods
only; it imports no wiring class, so ``base`` can import it.

**ncps's NCP config flaw.** ncps 1.0.1's ``NCP.get_config`` cannot be read back by ncps itself
(``NCP.from_config`` raises ``TypeError``), for two reasons:

- ``inter_neurons``, ``command_neurons`` and ``motor_neurons`` hold the *lists of neuron ids* of
  each layer (``self._inter_neurons``, ...) instead of the counts the constructor takes, so
  ``NCP(**config)`` adds lists where it expects ints;
- ``seed`` holds ``self._rng.seed()``: ``RandomState.seed()`` without an argument reseeds the
  generator from OS entropy and returns None. The seed is lost, and an ncps NCP whose config
  is taken *before* ``build`` then draws a circuit nobody can reproduce.

:func:`translate_ncps_config` reads the counts as the lengths of the lists, after checking that
they are the ids ncps assigns (motor ``0..M-1``, command ``M..M+C-1``, inter after them); ints
are read too (the corrected form :func:`to_ncps_config` writes, which ncps's ``NCP.from_config``
accepts). A missing seed is taken from the ``seed`` argument of
:meth:`~ncps_mlx.wirings.Wiring.from_ncps_config`; without it, ncps's default seed
22222 is assumed (which reproduces every NCP built with the default seed) and a
``UserWarning`` says so. AutoNCP is unaffected: it overrides ``get_config`` correctly.

The other direction: :func:`to_ncps_config` writes a config that ncps's ``from_config`` of the
class :func:`ncps_class_name` names accepts, and :func:`to_ncps_wiring` returns the ncps wiring
object itself (ncps is imported only then).
"""

from __future__ import annotations

import warnings

import numpy as np

from .._validation import check_int
from .sampling import EXACT_DRAW_LIMIT
from .synapses import check_polarity

__all__ = [
    "NCPS_CONFIG_KEYS",
    "ncps_class_name",
    "translate_ncps_config",
    "to_ncps_config",
    "to_ncps_wiring",
    "ncps_layers",
]

#: The exact keys of ``get_config()`` of each ncps 1.0.1 wiring class.
NCPS_CONFIG_KEYS: dict[str, frozenset[str]] = {
    "Wiring": frozenset(
        ("units", "adjacency_matrix", "sensory_adjacency_matrix", "input_dim", "output_dim")
    ),
    "FullyConnected": frozenset(("units", "output_dim", "erev_init_seed", "self_connections")),
    "Random": frozenset(("units", "output_dim", "sparsity_level", "random_seed")),
    "NCP": frozenset(
        (
            "inter_neurons",
            "command_neurons",
            "motor_neurons",
            "sensory_fanout",
            "inter_fanout",
            "recurrent_command_synapses",
            "motor_fanin",
            "seed",
        )
    ),
    "AutoNCP": frozenset(("units", "output_size", "sparsity_level", "seed")),
}
#: The ncps classes that ncps_mlx has under the same name (``classic.py``), stored by arguments.
_CLASSES = ("FullyConnected", "Random", "NCP", "AutoNCP")
_SEED_KEYS = {
    "FullyConnected": "erev_init_seed",
    "Random": "random_seed",
    "NCP": "seed",
    "AutoNCP": "seed",
}
_NCPS_DEFAULT_NCP_SEED = 22222


def ncps_class_name(config: dict) -> str:
    """The ncps 1.0.1 wiring class whose ``get_config()`` has exactly ``config``'s keys.

    Raises:
        TypeError: If ``config`` is not a dict.
        ValueError: If its keys are no ncps class's, naming the closest class and the keys
            missing and unexpected for it.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    keys = set(config)
    for name, expected in NCPS_CONFIG_KEYS.items():
        if keys == expected:
            return name

    def distance(name):
        return len(keys ^ NCPS_CONFIG_KEYS[name])

    closest = min(NCPS_CONFIG_KEYS, key=distance)
    missing = sorted(NCPS_CONFIG_KEYS[closest] - keys)
    unexpected = sorted(str(key) for key in keys - NCPS_CONFIG_KEYS[closest])
    raise ValueError(
        "config is neither ncps_mlx's Wiring.get_config() output (keys class_name, args, units, "
        "input_dim, output_dim, synapses, ...) nor an ncps 1.0.1 wiring config: the closest, "
        f"ncps {closest}'s, would need keys {missing} and not {unexpected}"
    )


def translate_ncps_config(config: dict, seed: int | None = None) -> dict:
    """ncps_mlx's description of the wiring that ncps 1.0.1's ``get_config()`` dict describes.

    For ``FullyConnected``, ``Random``, ``NCP`` and ``AutoNCP``: the
    :meth:`~ncps_mlx.wirings.Wiring.spec` of our class of the same name (its constructor call,
    which :meth:`~ncps_mlx.wirings.Wiring.from_spec` replays, drawing as ncps draws). For a base
    ``Wiring``: a :meth:`~ncps_mlx.wirings.Wiring.get_config` dict with its matrices' synapses.
    :meth:`Wiring.from_ncps_config <ncps_mlx.wirings.Wiring.from_ncps_config>` turns either into
    the wiring; the constructor checks the argument values then.

    Args:
        config: The dict (or the JSON of it, parsed).
        seed: Fills the seed of a config that stores it as None, such as every ncps ``NCP``
            config (see the module notes); must agree with a seed the config has.

    Raises:
        ValueError: If the dict is no ncps config, or its layers or matrices are malformed.
    """
    name = ncps_class_name(config)
    config = dict(config)
    if seed is not None:
        _fill_seed(config, name, seed)
    if name == "Wiring":
        return _config_from_matrices(config)
    if name == "NCP":
        config = _repair_ncp_config(config)
    return {"class_name": name, "args": config}


def _fill_seed(config: dict, name: str, seed) -> None:
    if name not in _SEED_KEYS:
        raise ValueError("seed= fills a wiring's seed; an ncps Wiring config has none")
    key = _SEED_KEYS[name]
    if config[key] is not None and config[key] != seed:
        raise ValueError(f"seed={seed!r} conflicts with the config's {key}={config[key]!r}")
    config[key] = seed


def _repair_ncp_config(config: dict) -> dict:
    """ncps's NCP config with layer sizes for its id lists and a seed for its None."""
    motor = _layer_size(config["motor_neurons"], "motor_neurons", 0)
    command = _layer_size(config["command_neurons"], "command_neurons", motor)
    inter = _layer_size(config["inter_neurons"], "inter_neurons", motor + command)
    config.update(inter_neurons=inter, command_neurons=command, motor_neurons=motor)
    if config["seed"] is None:
        warnings.warn(
            "ncps 1.0.1's NCP.get_config() does not store the seed (it stores "
            "RandomState.seed(), which is None): assuming ncps's default seed "
            f"{_NCPS_DEFAULT_NCP_SEED}; pass seed= to Wiring.from_ncps_config if the NCP was "
            "built with another",
            UserWarning,
            stacklevel=5,
        )
        config["seed"] = _NCPS_DEFAULT_NCP_SEED
    return config


def _layer_size(value, name: str, first_id: int) -> int:
    """A layer's size from ncps's list of its neuron ids (which must be ncps's ids) or an int."""
    if not isinstance(value, list):
        return _integer(value, f"NCP {name}", minimum=1)
    if not value:
        raise ValueError(f"ncps NCP config {name} lists no neurons")
    if value != list(range(first_id, first_id + len(value))):
        raise ValueError(
            f"ncps NCP config {name} lists neuron ids {value[:6]}"
            f"{'...' if len(value) > 6 else ''}, expected ncps's ids "
            f"{first_id}..{first_id + len(value) - 1}"
        )
    return len(value)


def _config_from_matrices(config: dict) -> dict:
    """Our ``get_config()`` dict of ncps's base ``Wiring`` config (dense matrices)."""
    units = _integer(config["units"], "Wiring units", minimum=1)
    input_dim, sensory = config["input_dim"], config["sensory_adjacency_matrix"]
    if (input_dim is None) != (sensory is None):
        raise ValueError(
            "ncps Wiring config: input_dim and sensory_adjacency_matrix must be both set or "
            "both None"
        )
    if input_dim is not None:
        input_dim = _integer(input_dim, "Wiring input_dim", minimum=1)
        sensory = _synapse_lists(sensory, input_dim, units, "sensory_adjacency_matrix")
    matrix = config["adjacency_matrix"]
    return {
        "class_name": "Wiring",
        "args": {"units": units},
        "units": units,
        "input_dim": input_dim,
        "output_dim": config["output_dim"],
        "synapses": _synapse_lists(
            [[0] * units] * units if matrix is None else matrix, units, units, "adjacency_matrix"
        ),
        "sensory_synapses": sensory,
        "sensory_drawn": True,
    }


def _synapse_lists(matrix, rows: int, columns: int, name: str) -> dict:
    """``{"src", "dst", "polarity"}`` lists of a dense ``rows x columns`` matrix of -1, 0, +1."""
    try:
        array = np.asarray(matrix)
    except ValueError:  # ragged
        array = None
    if array is None or array.shape != (rows, columns) or array.dtype.kind not in "iu":
        raise ValueError(
            f"ncps Wiring config {name} must be a {rows} x {columns} list of lists of integers"
        )
    src, dst = np.nonzero(array)
    polarity = check_polarity(array[src, dst], f"ncps Wiring config {name} entries")
    return {"src": src.tolist(), "dst": dst.tolist(), "polarity": polarity.tolist()}


def _integer(value, name: str, minimum: int) -> int:
    try:
        return check_int(value, name, minimum=minimum)
    except (TypeError, ValueError) as error:
        raise ValueError(f"ncps config: {error}") from None


# ---------------------------------------------------------------------- to ncps
def to_ncps_config(wiring) -> dict:
    """ncps 1.0.1's config of ``wiring``: a dict that ncps's ``from_config`` of the class
    :func:`ncps_class_name` names turns into a wiring with the same synapses.

    An unedited ``FullyConnected``, ``Random``, ``NCP`` or ``AutoNCP`` of ncps_mlx (exactly
    these classes) whose draws are ncps's (at most
    :data:`~ncps_mlx.wirings.sampling.EXACT_DRAW_LIMIT` candidate pairs) is written as its
    constructor arguments, as ncps writes it: building ncps's wiring with the same input size
    then draws the same synapses. (For ``NCP`` these are the layer sizes and the seed, which
    ncps's ``NCP.from_config`` reads, not the flawed form ncps writes.) Every other wiring is
    written as an ncps base ``Wiring`` config: the dense adjacency matrices and the sizes.

    Raises:
        TypeError: If ``wiring`` is not an ncps_mlx wiring.
    """
    spec = _spec_of(wiring)
    if spec["class_name"] in _CLASSES and _replays_as_in_ncps(wiring, spec):
        return dict(spec["args"])
    return _matrices_config(wiring)


def to_ncps_wiring(wiring):
    """The ncps 1.0.1 wiring object of ``wiring``, with its synapses and sizes.

    The class is that of :func:`to_ncps_config`, but an ``NCP`` or ``AutoNCP`` stays ncps's
    class of that name even when edited (so ncps's ``WiredCfCCell`` sees its three layers); the
    wiring is built if ``wiring`` is, and its adjacency matrices are then set to ours, so
    synapses drawn by our sampler above ``EXACT_DRAW_LIMIT`` or edited after drawing carry over.
    ncps is imported here, not before.

    Note that ncps 1.0.1's modules call ``build`` on the wiring they are given, and its
    ``FullyConnected``, ``Random`` and ``NCP`` draw their synapses again on every ``build``
    (ours draw once): a module built on this wiring may hold other synapses than it, but
    loading :func:`~ncps_mlx.serialization.export_ncps_state_dict` into the module sets its
    ``sparsity_mask`` buffers (and so the synapses it computes with) to ours.

    Raises:
        ImportError: If ncps is not installed.
        TypeError: If ``wiring`` is not an ncps_mlx wiring.
    """
    spec = _spec_of(wiring)
    try:
        from ncps import wirings as ncps_wirings
    except ImportError as error:
        raise ImportError("to_ncps_wiring needs ncps (pip install ncps==1.0.1)") from error
    config = to_ncps_config(wiring)
    if spec["class_name"] in ("NCP", "AutoNCP"):  # ncps's NCP class, for its three layers
        config = dict(spec["args"])
    result = getattr(ncps_wirings, ncps_class_name(config)).from_config(config)
    if wiring.input_dim is not None and not result.is_built():
        result.build(wiring.input_dim)
    result.adjacency_matrix = wiring.adjacency_matrix
    if wiring.input_dim is not None:
        result.sensory_adjacency_matrix = wiring.sensory_adjacency_matrix
    return result


def ncps_layers(wiring) -> list[list[int]]:
    """The neuron layers of ``wiring``'s ncps counterpart (:func:`to_ncps_wiring`), as ncps's
    ``get_neurons_of_layer`` lists them: inter, command, motor for an NCP, else all neurons."""
    if _spec_of(wiring)["class_name"] in ("NCP", "AutoNCP"):
        return [wiring.get_neurons_of_layer(layer) for layer in range(3)]
    return [list(range(wiring.units))]


def _spec_of(wiring) -> dict:
    if not callable(getattr(wiring, "spec", None)) or not hasattr(wiring, "adjacency_matrix"):
        raise TypeError(f"wiring must be an ncps_mlx Wiring, got {type(wiring).__name__}")
    return wiring.spec()


def _matrices_config(wiring) -> dict:
    sensory = wiring.sensory_adjacency_matrix
    return {
        "units": wiring.units,
        "adjacency_matrix": wiring.adjacency_matrix.tolist(),
        "sensory_adjacency_matrix": None if sensory is None else sensory.tolist(),
        "input_dim": wiring.input_dim,
        "output_dim": wiring.output_dim,
    }


def _replays_as_in_ncps(wiring, spec: dict) -> bool:
    """Whether ncps, given ``wiring``'s constructor arguments (and input size), draws exactly
    ``wiring``'s synapses: nothing was edited since, and every draw was ncps's."""
    fresh = type(wiring).from_spec(spec)
    if wiring.input_dim is not None:
        if wiring._sensory_drawn:
            fresh.build(wiring.input_dim)
        else:
            fresh.set_input_dim(wiring.input_dim)
    if fresh.output_dim != wiring.output_dim:
        return False
    pairs = [(fresh.synapses(), wiring.synapses())]
    if wiring.input_dim is not None:
        pairs.append((fresh.sensory_synapses(), wiring.sensory_synapses()))
    same = all(np.array_equal(a, b) for new, old in pairs for a, b in zip(new, old, strict=True))
    return same and _candidate_pairs(wiring, spec["class_name"]) <= EXACT_DRAW_LIMIT


def _candidate_pairs(wiring, class_name: str) -> int:
    """The most candidate pairs one of the wiring's draws enumerated (see ``classic.py``)."""
    if class_name in ("NCP", "AutoNCP"):
        return 0 if wiring.input_dim is None else wiring._candidate_pairs()
    if class_name == "Random":
        return wiring.units * max(wiring.units, wiring.input_dim or 0)
    return 0  # FullyConnected draws one polarity per pair, always as ncps does
