"""The :class:`Wiring` base class: a sparse, serialisable synapse graph of a neural circuit.

This module imports numpy only (networkx, matplotlib and MLX are imported lazily by the methods
that need them), so wirings can be built, saved and inspected without an ML framework.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .._validation import check_int, keyword_aliases
from .ncps_configs import translate_ncps_config
from .synapses import SynapseSet, check_polarity

__all__ = ["Wiring"]

_FILE_FORMAT = "ncps_mlx.wiring"
_FILE_VERSION = 1
_REQUIRED_CONFIG_KEYS = ("class_name", "args", "units", "input_dim", "output_dim", "synapses")
#: Keys of our config that no ncps 1.0.1 config has: a dict with none of them is read as ncps's.
_OWN_CONFIG_KEYS = frozenset(
    ("class_name", "args", "synapses", "sensory_synapses", "sensory_drawn")
)


class Wiring:
    """A neural circuit: ``units`` neurons, synapses between them and from sensory inputs.

    Neurons are ``0..units-1`` and sensory inputs ``0..input_dim-1``; by ncps convention the
    motor (output) neurons are ``0..output_dim-1``. Synapses are stored sparsely as
    ``(src, dst, polarity)`` arrays with polarity +1 (excitatory) or -1 (inhibitory); adding an
    existing synapse overwrites its polarity. Dense matrices are built only on request
    (:attr:`adjacency_matrix`, :attr:`sensory_adjacency_matrix`, :meth:`mask`).

    The base class is a blank circuit to fill with :meth:`add_synapse` / :meth:`add_synapses`;
    subclasses draw their synapses in ``__init__`` (internal) and in :meth:`build` (sensory),
    which is called with the input dimension, exactly as in ncps.

    Differences from ncps 1.0.1: ``adjacency_matrix`` and ``sensory_adjacency_matrix`` are
    read-only properties computed from the sparse store (edit through ``add_*``); ``build`` with
    an already-built wiring and the same ``input_dim`` is a no-op (ncps would draw again);
    ``get_config``/``from_config`` store the synapse list and restore the exact subclass
    (``from_config`` and ``load`` read ncps's configs too: :mod:`~ncps_mlx.wirings.ncps_configs`).

    Args:
        units: Number of neurons (> 0).
    """

    _registry: dict[str, type[Wiring]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Wiring._registry[_registry_key(cls)] = cls

    def __init__(self, units: int):
        self.units = check_int(units, "units", minimum=1)
        self.input_dim: int | None = None
        self.output_dim: int | None = None
        self._synapses = SynapseSet(self.units, self.units, "units")
        self._sensory: SynapseSet | None = None
        self._sensory_drawn = False

    # ------------------------------------------------------------------ building
    def is_built(self) -> bool:
        """Whether the input dimension is known (ncps semantics)."""
        return self.input_dim is not None

    @keyword_aliases(input_shape="input_dim")
    def build(self, input_dim: int) -> None:
        """Fix the number of sensory inputs and draw the sensory synapses (once).

        ``input_shape``, the name of ncps's subclasses for ``input_dim``, works too.

        Raises:
            ValueError: If the wiring was already given a different ``input_dim``.
        """
        self.set_input_dim(input_dim)
        if not self._sensory_drawn:
            self._sensory_drawn = True
            self._build_sensory_synapses()

    def _build_sensory_synapses(self) -> None:
        """Hook for subclasses: draw sensory synapses once ``input_dim`` is known."""

    def set_input_dim(self, input_dim: int) -> None:
        """Set the number of sensory inputs without drawing synapses.

        Raises:
            ValueError: If ``input_dim`` < 1 or differs from an input_dim set before.
        """
        input_dim = check_int(input_dim, "input_dim", minimum=1)
        if self.input_dim is not None and self.input_dim != input_dim:
            raise ValueError(
                f"input_dim={input_dim} conflicts with the wiring's input_dim={self.input_dim}, "
                "set by an earlier build() or set_input_dim()"
            )
        if self.input_dim is None:
            self.input_dim = input_dim
            self._sensory = SynapseSet(input_dim, self.units, "input_dim")

    def set_output_dim(self, output_dim: int) -> None:
        """Set the number of motor (output) neurons, ``1 <= output_dim <= units``."""
        self.output_dim = check_int(output_dim, "output_dim", minimum=1, maximum=self.units)

    # ------------------------------------------------------------------ synapses
    def add_synapse(self, src: int, dest: int, polarity: int) -> None:
        """Add (or overwrite) the synapse ``src -> dest`` between neurons."""
        self._synapses.add(src, dest, polarity)

    def add_sensory_synapse(self, src: int, dest: int, polarity: int) -> None:
        """Add (or overwrite) the synapse from sensory input ``src`` to neuron ``dest``."""
        self._require_built("add_sensory_synapse")
        self._sensory.add(src, dest, polarity)

    def add_synapses(self, src, dst, polarity) -> None:
        """Add many synapses at once.

        Args:
            src: Source neuron indices, shape ``(S,)``.
            dst: Target neuron indices, shape ``(S,)``.
            polarity: +1/-1, a scalar or shape ``(S,)``. Later duplicates win.
        """
        self._synapses.add(src, dst, polarity)

    def add_sensory_synapses(self, src, dst, polarity) -> None:
        """Add many sensory synapses at once (same arguments as :meth:`add_synapses`)."""
        self._require_built("add_sensory_synapses")
        self._sensory.add(src, dst, polarity)

    def synapses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return read-only ``(src, dst, polarity)`` arrays, shape ``(S,)``, sorted by src, dst."""
        return self._synapses.arrays()

    def sensory_synapses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return read-only ``(src, dst, polarity)`` arrays of the sensory synapses."""
        self._require_built("sensory_synapses")
        return self._sensory.arrays()

    @property
    def synapse_count(self) -> int:
        """Number of synapses between neurons."""
        return len(self._synapses)

    @property
    def sensory_synapse_count(self) -> int:
        """Number of synapses from sensory inputs to neurons (0 before ``build``)."""
        return 0 if self._sensory is None else len(self._sensory)

    @property
    def adjacency_matrix(self) -> np.ndarray:
        """Dense ``(units, units)`` int32 matrix of polarities, built on each access."""
        return self._synapses.dense()

    @property
    def sensory_adjacency_matrix(self) -> np.ndarray | None:
        """Dense ``(input_dim, units)`` int32 matrix of polarities, or None before ``build``."""
        return None if self._sensory is None else self._sensory.dense()

    def erev_initializer(self, shape=None, dtype=None) -> np.ndarray:
        """Reversal-potential init for LTC: the dense polarity matrix ``(units, units)``."""
        matrix = self.adjacency_matrix
        return matrix if dtype is None else matrix.astype(dtype)

    def sensory_erev_initializer(self, shape=None, dtype=None) -> np.ndarray:
        """Sensory reversal-potential init: the dense matrix ``(input_dim, units)``."""
        self._require_built("sensory_erev_initializer")
        matrix = self.sensory_adjacency_matrix
        return matrix if dtype is None else matrix.astype(dtype)

    def mask(self, sensory: bool = False, dtype=None):
        """Return ``|adjacency|`` as a dense MLX array for masked dense kernels.

        Args:
            sensory: If True, the ``(input_dim, units)`` sensory mask, else ``(units, units)``.
            dtype: MLX dtype, default ``mx.float32``.
        """
        import mlx.core as mx

        if sensory:
            self._require_built("mask(sensory=True)")
        matrix = self.sensory_adjacency_matrix if sensory else self.adjacency_matrix
        return mx.array(np.abs(matrix), dtype=mx.float32 if dtype is None else dtype)

    # ------------------------------------------------------------------ neurons
    @property
    def num_layers(self) -> int:
        """Number of neuron layers (1 for an unstructured wiring)."""
        return 1

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        """Neuron ids of layer ``layer_id`` (``0 <= layer_id < num_layers``)."""
        check_int(layer_id, "layer_id", minimum=0, maximum=self.num_layers - 1)
        return list(range(self.units))

    def neuron_types(self) -> np.ndarray:
        """Type name of every neuron, shape ``(units,)`` (``"motor"``/``"inter"`` here)."""
        if type(self).get_type_of_neuron is not Wiring.get_type_of_neuron:
            # A subclass written against the ncps API defines only the per-neuron method.
            return np.array([self.get_type_of_neuron(i) for i in range(self.units)])
        types = np.full(self.units, "inter", dtype=object)
        types[: self.output_dim or 0] = "motor"
        return types.astype(str)

    def get_type_of_neuron(self, neuron_id: int) -> str:
        """Type name of one neuron (``"motor"`` if ``neuron_id < output_dim`` else ``"inter"``)."""
        neuron_id = check_int(neuron_id, "neuron_id", minimum=0, maximum=self.units - 1)
        return "motor" if neuron_id < (self.output_dim or 0) else "inter"

    def neuron_time_scales(self) -> np.ndarray:
        """Relative time scale of every neuron, shape ``(units,)`` float32.

        Cells scale their initial time constants by it; all ones unless a wiring models
        several time scales.
        """
        return np.ones(self.units, np.float32)

    # ------------------------------------------------------------------ config and files
    def _config_args(self) -> dict:
        """Constructor arguments that rebuild this wiring (JSON-safe). Subclasses override."""
        return {"units": self.units}

    def get_config(self) -> dict:
        """Return a JSON-safe dict that :meth:`from_config` turns back into this exact wiring.

        Keys: ``class_name``, ``args`` (constructor arguments), ``units``, ``input_dim``,
        ``output_dim``, ``synapses`` and ``sensory_synapses`` (each ``{"src": [...], "dst":
        [...], "polarity": [...]}``; sensory is None before ``build``), and ``sensory_drawn``
        (False after :meth:`set_input_dim` without :meth:`build`, so that building the restored
        wiring still draws its sensory synapses).
        """
        return {
            "class_name": _registry_key(type(self)),
            "args": self._config_args(),
            "units": self.units,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "synapses": _synapse_lists(*self.synapses()),
            "sensory_synapses": None
            if self._sensory is None
            else _synapse_lists(*self._sensory.arrays()),
            "sensory_drawn": self._sensory_drawn,
        }

    def spec(self) -> dict:
        """``{"class_name": ..., "args": ...}``: the constructor call that makes this wiring
        (before ``build`` and later edits), a small JSON-safe description that
        :meth:`from_spec` replays. The seeds are among the arguments, so the draws repeat."""
        return {"class_name": _registry_key(type(self)), "args": self._config_args()}

    @classmethod
    def from_spec(cls, spec: dict) -> Wiring:
        """A new, unbuilt wiring from :meth:`spec` output (nothing is imported or evaluated).

        Raises:
            ValueError: On a malformed spec, an unknown class or arguments that do not fit it.
        """
        if not isinstance(spec, dict) or set(spec) != {"class_name", "args"}:
            raise ValueError(f"a wiring spec is {{'class_name': str, 'args': dict}}, got {spec!r}")
        klass = Wiring._registry.get(spec["class_name"])
        if klass is None or not issubclass(klass, cls) or not isinstance(spec["args"], dict):
            raise ValueError(
                f"spec class_name={spec['class_name']!r} is not a known {cls.__name__}"
            )
        try:
            return klass(**spec["args"])
        except TypeError as error:
            raise ValueError(f"spec args do not fit {klass.__name__}: {error}") from None

    @classmethod
    def from_config(cls, config: dict) -> Wiring:
        """Rebuild a wiring from :meth:`get_config` output, restoring its exact subclass.

        The class is looked up among imported ``Wiring`` subclasses by name; nothing is imported
        or evaluated. The constructor is replayed (so an unbuilt wiring builds with the same
        draws as the original) and the stored synapses then replace the drawn ones.

        ncps 1.0.1's ``get_config()`` of any of its wiring classes is read too (a dict without
        our ``class_name``, ``args`` and synapse keys), as :meth:`from_ncps_config` reads it.

        Raises:
            ValueError: On an unknown class, a class that is not ``cls`` or a subclass, missing
                keys, or a malformed synapse list; on a dict that is neither format.
        """
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        if config.keys().isdisjoint(_OWN_CONFIG_KEYS):
            return cls.from_ncps_config(config)
        missing = [key for key in _REQUIRED_CONFIG_KEYS if key not in config]
        if missing:
            raise ValueError(
                f"config is missing keys {missing}; expected Wiring.get_config() output"
            )
        if not isinstance(config["class_name"], str):
            raise ValueError(f"config class_name must be a string, got {config['class_name']!r}")
        klass = Wiring._registry.get(config["class_name"])
        if klass is None:
            raise ValueError(
                f"config class_name={config['class_name']!r} is not a known Wiring subclass "
                "(import the module that defines it first)"
            )
        if not issubclass(klass, cls):
            raise ValueError(f"config class_name={config['class_name']!r} is not a {cls.__name__}")
        if not isinstance(config["args"], dict):
            raise ValueError("config['args'] must be a dict of constructor arguments")
        try:
            wiring = klass(**config["args"])
        except TypeError as error:
            raise ValueError(f"config args do not fit {klass.__name__}: {error}") from None
        if config["units"] != wiring.units:
            raise ValueError(
                f"config units={config['units']} but its args build {wiring.units} units"
            )
        if config["output_dim"] is not None:
            wiring.set_output_dim(config["output_dim"])
        wiring._synapses.replace(*_synapse_arrays(config["synapses"], "synapses"))
        if config["input_dim"] is not None:
            wiring.set_input_dim(config["input_dim"])
            wiring._sensory_drawn = bool(config.get("sensory_drawn", True))
            sensory = config.get("sensory_synapses")
            if sensory is None:
                raise ValueError("config has input_dim but sensory_synapses is None")
            wiring._sensory.replace(*_synapse_arrays(sensory, "sensory_synapses"))
        return wiring

    @classmethod
    def from_ncps_config(cls, config: dict, seed: int | None = None) -> Wiring:
        """A wiring from ncps 1.0.1's ``get_config()`` of ``Wiring``, ``FullyConnected``,
        ``Random``, ``NCP`` or ``AutoNCP`` (see :mod:`~ncps_mlx.wirings.ncps_configs`).

        The four classes give ours of the same name, unbuilt as ncps's ``from_config`` gives
        them: built with the original input size, they have ncps's synapses. A base ``Wiring``
        config gives a :class:`Wiring` with its matrices' synapses and sizes.

        Args:
            config: The dict (or the JSON of it, parsed).
            seed: The seed of a config that stores None, as ncps's flawed ``NCP`` config always
                does (default there: ncps's 22222, with a warning).

        Raises:
            ValueError: If the dict is no ncps config, its values do not make a wiring, or it
                makes one that is not a ``cls``.
        """
        description = translate_ncps_config(config, seed)
        name = description["class_name"]
        try:
            if "synapses" in description:
                wiring = Wiring.from_config(description)
            else:
                wiring = Wiring._registry[name](**description["args"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"ncps {name} config: {error}") from None
        if not isinstance(wiring, cls):
            raise ValueError(f"config is ncps's {name} config, not a {cls.__name__}")
        return wiring

    def save(self, path: str | os.PathLike) -> None:
        """Write the wiring to ``path`` as JSON (see :meth:`get_config`)."""
        document = {"format": _FILE_FORMAT, "version": _FILE_VERSION, "wiring": self.get_config()}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(document, handle, separators=(",", ":"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Wiring:
        """Read a wiring written by :meth:`save`; returns the saved subclass.

        A JSON file holding ncps 1.0.1's ``get_config()`` of a wiring (``json.dump(
        ncps_wiring.get_config(), file)``) is read too, as :meth:`from_config` reads it.

        Raises:
            ValueError: If the file is not valid JSON, not an ncps_mlx wiring file (or ncps
                config), of a newer format version, or holds an invalid config.
        """
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{os.fspath(path)!r} is not a JSON wiring file: {error}") from None
        try:
            return cls.from_config(_config_of_document(document, os.fspath(path)))
        except TypeError as error:  # a config value of the wrong type (e.g. input_dim="3")
            raise ValueError(
                f"{os.fspath(path)!r} holds an invalid wiring config: {error}"
            ) from None

    # ------------------------------------------------------------------ graphs and plots
    def get_graph(self, include_sensory_neurons: bool = True):
        """Return the wiring as a ``networkx.DiGraph``.

        Nodes are ``"neuron_{i}"`` (and ``"sensory_{i}"``) with attribute ``neuron_type``; edges
        carry ``polarity`` (``"excitatory"``/``"inhibitory"``, as in ncps) and ``sign`` (+1/-1).
        """
        from ..viz import wiring_graph

        return wiring_graph(self, include_sensory_neurons)

    def draw_graph(
        self, layout="shell", neuron_colors=None, synapse_colors=None, draw_labels=False, **kwargs
    ):
        """Draw with matplotlib; returns legend handles (see :func:`ncps_mlx.viz.draw_wiring`)."""
        from ..viz import draw_wiring

        return draw_wiring(
            self,
            layout=layout,
            neuron_colors=neuron_colors,
            synapse_colors=synapse_colors,
            draw_labels=draw_labels,
            **kwargs,
        )

    # ------------------------------------------------------------------ misc
    def _require_built(self, what: str) -> None:
        if self._sensory is None:
            raise ValueError(f"{what} needs the input dimension: call build(input_dim) first")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(units={self.units}, input_dim={self.input_dim}, "
            f"output_dim={self.output_dim}, synapses={self.synapse_count}, "
            f"sensory_synapses={self.sensory_synapse_count})"
        )


Wiring._registry["Wiring"] = Wiring


def _config_of_document(document, path: str) -> dict:
    """The wiring config in a JSON document: our file's ``wiring`` entry, or the document
    itself if it is an ncps config (a dict with neither our file's keys nor our config's)."""
    if isinstance(document, dict) and document.keys().isdisjoint({"format", *_OWN_CONFIG_KEYS}):
        return document
    if not isinstance(document, dict) or document.get("format") != _FILE_FORMAT:
        raise ValueError(f"{path!r} is not an ncps_mlx wiring file")
    if document.get("version") != _FILE_VERSION:
        raise ValueError(
            f"{path!r} has wiring format version {document.get('version')!r}; "
            f"this ncps_mlx reads version {_FILE_VERSION}"
        )
    if not isinstance(document.get("wiring"), dict):
        raise ValueError(f"{path!r} has no 'wiring' object")
    return document["wiring"]


def _registry_key(cls: type) -> str:
    """Short class name for ncps_mlx's own wirings, module-qualified for everyone else's."""
    if cls.__module__.startswith("ncps_mlx."):
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def _synapse_lists(src, dst, polarity) -> dict:
    return {"src": src.tolist(), "dst": dst.tolist(), "polarity": polarity.tolist()}


def _synapse_arrays(entry, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a stored synapse list ``{"src", "dst", "polarity"}`` and return arrays."""
    if not isinstance(entry, dict) or set(entry) != {"src", "dst", "polarity"}:
        raise ValueError(f"config {name} must be a dict with keys src, dst, polarity")
    lengths = {key: len(value) if isinstance(value, list) else None for key, value in entry.items()}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise ValueError(f"config {name}: src, dst and polarity must be lists of equal length")
    arrays = []
    for key in ("src", "dst", "polarity"):
        try:
            array = np.asarray(entry[key]) if entry[key] else np.zeros(0, np.int64)
        except ValueError:
            array = None
        if array is None or array.ndim != 1 or array.dtype.kind not in "iu":
            raise ValueError(f"config {name}.{key} must be a flat list of integers")
        arrays.append(array)
    check_polarity(arrays[2], f"config {name}.polarity")
    return arrays[0], arrays[1], arrays[2]
