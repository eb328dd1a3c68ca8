"""The liquid time-constant (LTC) cell of Hasani et al. 2021, ncps-compatible."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._validation import check_int, keyword_aliases
from ..wirings import Wiring
from .common import Prepared, WiredCell
from .fan_in import fan_in_table, gather_synapse_values
from .fast_weights import FastWeights, fast_weights_for, hebbian_update, with_fast_weights
from .ltc_routing import RoutingPlan, routing_plan
from .ltc_synapses import SynapseParams, routed_synapses, synapse_sums, table_if_sparse
from .ode_solvers import SOLVERS

__all__ = ["LTCCell", "LTCParams", "LTCFastWeights"]

_MAPPINGS = ("affine", "linear", None)
#: ``solver`` values: ncps's fused semi-implicit Euler update and the explicit solvers of
#: :mod:`~ncps_mlx.cells.ode_solvers`.
LTC_SOLVERS = ("semi_implicit", *SOLVERS)
_INIT_RANGES = {
    "gleak": (0.001, 1.0),
    "vleak": (-0.2, 0.2),
    "cm": (0.4, 0.6),
    "w": (0.001, 1.0),
    "sigma": (3.0, 8.0),
    "mu": (0.3, 0.8),
    "sensory_w": (0.001, 1.0),
    "sensory_sigma": (3.0, 8.0),
    "sensory_mu": (0.3, 0.8),
}


class LTCFastWeights(NamedTuple):
    """What an :class:`LTCCell` step needs for Hebbian fast weights.

    Attributes:
        erev: Reversal potentials of the recurrent synapses, in their layout (``(N, N)`` or
            ``(N, K)``), to recompute ``w * erev`` once the traces are added to ``w``.
        plan: Where the ``S_fast`` fast synapses sit in that layout, and the rule's constants
            (:class:`~ncps_mlx.cells.fast_weights.FastWeights`).
    """

    erev: mx.array
    plan: FastWeights


class LTCParams(NamedTuple):
    """Per-call constants of an :class:`LTCCell` step (``N`` neurons).

    Attributes:
        synapses: The recurrent synapses (:class:`~ncps_mlx.cells.ltc_synapses.SynapseParams`,
            dense ``(N, N)`` or fan-in ``(N, K)``), weights constrained and masked.
        cm: Membrane capacitances ``(N,)``, constrained.
        gleak: Leak conductances ``(N,)``, constrained.
        leak_current: ``gleak * vleak`` ``(N,)``.
        fast_weights: The fast synapses' layout and rule (:class:`LTCFastWeights`); None
            without fast weights. With them, the state ends with one trace per fast synapse.
        routing: The routing synapses' layout in the fan-in table and the routing constants
            (:class:`~ncps_mlx.cells.ltc_routing.RoutingPlan`); None without routing.
    """

    synapses: SynapseParams
    cm: mx.array
    gleak: mx.array
    leak_current: mx.array
    fast_weights: LTCFastWeights | None
    routing: RoutingPlan | None


class LTCCell(WiredCell, nn.Module):
    r"""A `liquid time-constant <https://ojs.aaai.org/index.php/AAAI/article/view/16936>`_ cell.

    Neuron potentials :math:`v \in \mathbb{R}^N` follow the ODE

    .. math::

        C_m \dot v_j = g_{leak,j}(V_{leak,j} - v_j)
            + \sum_i w_{ij} \sigma(\sigma_{ij}(v_i - \mu_{ij})) (E_{ij} - v_j)
            + \sum_k \hat w_{kj} \sigma(\hat\sigma_{kj}(x_k - \hat\mu_{kj})) (\hat E_{kj} - v_j)

    where the sums run over the wiring's synapses (``i -> j``) and sensory synapses
    (``k -> j``). One step of length :math:`\Delta t` applies ncps's fused semi-implicit Euler
    update ``ode_unfolds`` times with step :math:`\Delta t / \text{ode\_unfolds}`:

    .. math::

        v \leftarrow \frac{c\, v + g_{leak} V_{leak} + \sum_i a_{ij} E_{ij} + S^{num}_j}
                          {c + g_{leak} + \sum_i a_{ij} + S^{den}_j + \epsilon},
        \quad c = C_m\, \text{ode\_unfolds} / \Delta t

    This is ``solver="semi_implicit"`` (the default, ncps's). The explicit solvers ``"euler"``,
    ``"heun"`` and ``"rk4"`` instead integrate the ODE as written, :math:`\dot v =
    (N(v) - v D(v)) / C_m` with :math:`N` the numerator and :math:`D` the denominator above
    (without :math:`c` and :math:`\epsilon`), with ``ode_unfolds`` steps of their order (1, 2,
    4; 1, 2, 4 evaluations of the synapse sums per unfold). The semi-implicit update is first
    order but stable for any step; the explicit ones need :math:`\Delta t / \text{ode\_unfolds}`
    small against the neurons' time constants :math:`C_m / D`, and then ``"rk4"`` is by far the
    most accurate per unit of work (tested against a fine-step reference integration).

    The sensory sums :math:`S` do not depend on :math:`v` and are computed for all time steps
    before the loop. Sparse wirings run on a padded fan-in table (cost per synapse, see
    :mod:`ncps_mlx.cells.fan_in`) instead of dense ``(N, N)`` synapse matrices. Outputs are the
    first ``output_dim`` (motor) neurons, mapped by ``output_w * v + output_b``; inputs are
    mapped by ``input_w * x + input_b`` first.

    Parameters carry ncps's names and shapes: ``gleak, vleak, cm`` ``(N,)``, ``sigma, mu, w,
    erev`` ``(N, N)``, ``sensory_sigma, sensory_mu, sensory_w, sensory_erev`` ``(F, N)``,
    ``input_w, input_b`` ``(F,)``, ``output_w, output_b`` ``(M,)`` in the dense layout; in the
    fan-in layout (``sparse``) the synapse parameters are ``(N, K)`` per-synapse tables instead
    (:meth:`from_ncps` converts ncps weights). The wiring's masks are
    constants, not parameters (read them as ncps's :attr:`sparsity_mask` and
    :attr:`sensory_sparsity_mask`). ``cm`` is initialised in ncps's range times the wiring's
    :meth:`~ncps_mlx.wirings.Wiring.neuron_time_scales` (all ones for the classic wirings), so
    neurons of slow groups start with proportionally longer time constants.

    Args:
        wiring (Wiring): The circuit; built here with ``in_features`` if given.
        in_features (int, optional): Input size ``F``.
        input_mapping (str): ``"affine"``, ``"linear"`` or None.
        output_mapping (str): ``"affine"``, ``"linear"`` or None.
        ode_unfolds (int): Solver iterations per step.
        solver (str): ``"semi_implicit"`` (ncps's), ``"euler"``, ``"heun"`` or ``"rk4"``.
        epsilon (float): Added to the denominator to avoid dividing by 0.
        implicit_param_constraints (bool): Pass ``w, sensory_w, cm, gleak`` through softplus
            (else call :meth:`apply_weight_constraints` after each optimizer step, as in ncps).
        sparse (bool, optional): Store and compute synapses per synapse in fan-in tables
            (True) or as dense matrices (False). None chooses per synapse set: tables when the
            largest fan-in is at most half the number of possible sources. Both layouts give
            the same results to float32 rounding; the fan-in layout never allocates ``N x N``.
        fast_weights (bool, optional): Give the wiring's fast synapses (``MetaWiring``) Hebbian
            fast weights (:mod:`ncps_mlx.cells.fast_weights`), kept in the state after the
            potentials. None: on whenever the wiring has fast synapses.
        routing (bool, optional): Scale a ``DynamicRoutingWiring``'s capsule-to-capsule
            synapses at every step by routing-by-agreement coupling coefficients computed from
            the synapses' drives at the step's start
            (:func:`~ncps_mlx.cells.ltc_routing.routing_gains`). None: on whenever the wiring has
            capsules. Needs the fan-in layout.
    """

    def __init__(
        self,
        wiring: Wiring,
        in_features: int | None = None,
        input_mapping: str | None = "affine",
        output_mapping: str | None = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = False,
        sparse: bool | None = None,
        fast_weights: bool | None = None,
        routing: bool | None = None,
        solver: str = "semi_implicit",
    ):
        super().__init__()
        self._attach_wiring(wiring, in_features, "in_features")
        for name, mapping in (("input_mapping", input_mapping), ("output_mapping", output_mapping)):
            if mapping not in _MAPPINGS:
                raise ValueError(f"{name} must be one of {_MAPPINGS}, got {mapping!r}")
        self.input_mapping = input_mapping
        self.output_mapping = output_mapping
        self.ode_unfolds = check_int(ode_unfolds, "ode_unfolds", minimum=1)
        if not isinstance(solver, str) or solver not in LTC_SOLVERS:
            raise ValueError(f"solver must be one of {LTC_SOLVERS}, got {solver!r}")
        self.solver = solver
        self.epsilon = float(epsilon)
        self.implicit_param_constraints = bool(implicit_param_constraints)
        if sparse not in (None, True, False):
            raise ValueError(f"sparse must be None, True or False, got {sparse!r}")
        self._sparse = sparse
        has_routing = hasattr(wiring, "routing_pairs")
        if routing and not has_routing:
            raise ValueError("routing=True needs a wiring with capsules (DynamicRoutingWiring)")
        self._use_routing = has_routing if routing is None else bool(routing)
        if self._use_routing and sparse is False:
            raise ValueError("routing works on the fan-in layout: use sparse=None or True")
        self._allocate_parameters()
        self._routing = routing_plan(wiring, self._fan_in) if self._use_routing else None
        has_fast = hasattr(wiring, "fast_synapse_mask")
        if fast_weights and not has_fast:
            raise ValueError("fast_weights=True needs a wiring with fast synapses (MetaWiring)")
        self._use_fast = has_fast if fast_weights is None else bool(fast_weights)
        self._fast = self._locate_fast_weights()

    def _locate_fast_weights(self):
        """The wiring's fast synapses in this cell's weight layout (None without them)."""
        if not self._use_fast:
            return None
        src, dst, _ = self._wiring.synapses()
        n = self.num_neurons
        if self._fan_in is None:
            return fast_weights_for(self._wiring, src.astype(np.int64) * n + dst, n * n)
        table = self._fan_in
        return fast_weights_for(self._wiring, table.slot_of_synapse, n * table.width)

    @property
    def state_size(self) -> int:
        """``N`` potentials, plus one Hebbian trace per fast synapse with fast weights."""
        return self.num_neurons + (0 if self._fast is None else self._fast.count)

    def _allocate_parameters(self):
        n, f, m = self.num_neurons, self.sensory_size, self.motor_size
        for name, shape in (("gleak", (n,)), ("vleak", (n,)), ("cm", (n,))):
            setattr(self, name, _uniform(name, shape))
        # A neuron's time constant grows with its capacitance: slow groups start slower.
        self.cm = self.cm * mx.array(self._wiring.neuron_time_scales())
        self._fan_in, self._sparsity_mask = self._allocate_synapses(
            "", self._wiring.synapses(), n, force_table=self._use_routing
        )
        self._sensory_fan_in, self._sensory_sparsity_mask = self._allocate_synapses(
            "sensory_", self._wiring.sensory_synapses(), f
        )
        if self.input_mapping in ("affine", "linear"):
            self.input_w = mx.ones((f,))
        if self.input_mapping == "affine":
            self.input_b = mx.zeros((f,))
        if self.output_mapping in ("affine", "linear"):
            self.output_w = mx.ones((m,))
        if self.output_mapping == "affine":
            self.output_b = mx.zeros((m,))

    def _allocate_synapses(self, prefix: str, synapses, num_sources: int, force_table=False):
        """``{prefix}sigma, mu, w, erev`` of one synapse set; returns ``(table, dense_mask)``.

        Dense layout: ``(num_sources, N)`` matrices and an ``|adjacency|`` mask (ncps's).
        Fan-in layout: ``(N, K)`` per-synapse values (see :mod:`~ncps_mlx.cells.fan_in`); no
        ``N x N`` array is ever made.
        """
        src, dst, polarity = synapses
        sparse = True if force_table else self._sparse
        table = table_if_sparse(sparse, src, dst, num_sources, self.num_neurons)
        if table is None:
            erev = np.zeros((num_sources, self.num_neurons), np.float32)
            erev[src, dst] = polarity
            mask = mx.array(np.abs(erev))
            erev = mx.array(erev)
        else:
            erev, mask = mx.array(table.lay_out(polarity)), None
        present = 1.0 if table is None else table.valid  # padding slots stay 0
        for name in ("sigma", "mu", "w"):
            setattr(self, prefix + name, _uniform(prefix + name, erev.shape) * present)
        setattr(self, prefix + "erev", erev)
        return table, mask

    def synapse_values(self, name: str) -> np.ndarray:
        """Values of synapse parameter ``name`` (``w``, ``erev``, ``mu``, ``sigma``) per synapse,
        aligned with ``wiring.synapses()`` (e.g. importance scores for an AdaptiveWiring)."""
        if name not in ("sigma", "mu", "w", "erev"):
            raise ValueError(f"name must be one of sigma, mu, w, erev, got {name!r}")
        src, dst, _ = self._wiring.synapses()
        keys = src.astype(np.int64) * self.num_neurons + dst
        if self._fan_in is None:
            return np.array(getattr(self, name)).reshape(-1)[keys]
        old_keys, slots = self._fan_in.synapse_keys()
        _, slot = _match_keys(old_keys, slots, keys)
        return np.array(getattr(self, name)).reshape(-1)[slot]

    def refresh_wiring(self) -> None:
        """Follow the wiring after its internal synapses changed (e.g. ``AdaptiveWiring.
        update_connectivity``), in place.

        Kept synapses keep their trained parameters; removed ones vanish (dense layout: weight
        set to 0 and masked out); new ones start from a fresh initialisation with their
        polarity as reversal potential. Parameter shapes are kept (a fan-in table keeps its
        width unless a neuron's fan-in outgrows it), so optimizer state stays valid and
        training continues. Sensory synapses are assumed unchanged.
        """
        src, dst, polarity = self._wiring.synapses()
        n = self.num_neurons
        keys = src.astype(np.int64) * n + dst
        if self._fan_in is None:
            old_keys = np.flatnonzero(np.array(self._sparsity_mask).reshape(-1))
            table, new_slots, old_slots = None, keys, old_keys
            shape = (n, n)
        else:
            old_keys, old_slots = self._fan_in.synapse_keys()
            table = fan_in_table(src, dst, n, min_width=self._fan_in.width)
            new_slots, shape = table.slot_of_synapse, table.valid.shape
        kept, source_slot = _match_keys(old_keys, old_slots, keys)
        fresh = {name: np.array(_uniform(name, (keys.size,))) for name in ("sigma", "mu", "w")}
        fresh["erev"] = polarity.astype(np.float32)
        for name, new_values in fresh.items():
            old = np.array(getattr(self, name)).reshape(-1)
            values = np.where(kept, old[source_slot], new_values)
            array = np.zeros(int(np.prod(shape)), np.float32)
            array[new_slots] = values
            setattr(self, name, mx.array(array.reshape(shape)))
        if table is None:
            mask = np.zeros(n * n, np.float32)
            mask[keys] = 1.0
            self._sparsity_mask = mx.array(mask.reshape(n, n))
        else:
            if table.width != self._fan_in.width:
                warnings.warn(
                    f"a neuron's fan-in grew past the table width ({self._fan_in.width} -> "
                    f"{table.width}): the synapse parameters changed shape, so re-initialise "
                    "the optimizer state (optimizer.init(model.trainable_parameters()))",
                    stacklevel=2,
                )
            self._fan_in = table
        self._fast = self._locate_fast_weights()
        self._routing = routing_plan(self._wiring, table) if self._use_routing else None

    def from_ncps(self, name: str, value: np.ndarray) -> np.ndarray:
        """An ncps parameter (dense layout) in this cell's layout (used by the weight loader).

        Raises:
            ValueError: If a synapse parameter does not have ncps's ``(sources, N)`` shape.
        """
        table = self._sensory_fan_in if name.startswith("sensory_") else self._fan_in
        if table is None or name.split("sensory_")[-1] not in ("sigma", "mu", "w", "erev"):
            return value
        num_sources = self.sensory_size if name.startswith("sensory_") else self.num_neurons
        if value.shape != (num_sources, self.num_neurons):
            raise ValueError(
                f"has shape {value.shape}, expected {(num_sources, self.num_neurons)} (ncps layout)"
            )
        return np.array(gather_synapse_values(mx.array(value), table))

    def to_ncps(self, name: str, value) -> np.ndarray:
        """A parameter of this cell in ncps's dense layout (the inverse of :meth:`from_ncps`)."""
        table = self._sensory_fan_in if name.startswith("sensory_") else self._fan_in
        value = np.array(value)
        if table is None or name.split("sensory_")[-1] not in ("sigma", "mu", "w", "erev"):
            return value
        num_sources = self.sensory_size if name.startswith("sensory_") else self.num_neurons
        valid = np.array(table.valid).reshape(-1) > 0
        targets = np.repeat(np.arange(self.num_neurons), table.width)[valid]
        dense = np.zeros((num_sources, self.num_neurons), value.dtype)
        dense[np.array(table.sources)[valid], targets] = value.reshape(-1)[valid]
        return dense

    def ncps_buffers(self) -> dict[str, np.ndarray]:
        """ncps's non-trainable ``sparsity_mask`` buffers, from the wiring (dense, on demand)."""
        return {
            "sparsity_mask": np.abs(self._wiring.adjacency_matrix).astype(np.float32),
            "sensory_sparsity_mask": np.abs(self._wiring.sensory_adjacency_matrix).astype(
                np.float32
            ),
        }

    @property
    def sparsity_mask(self) -> mx.array:
        """``|adjacency_matrix|`` ``(N, N)`` float32, ncps's buffer (dense, built on access)."""
        return self._wiring.mask()

    @property
    def sensory_sparsity_mask(self) -> mx.array:
        """``|sensory_adjacency_matrix|`` ``(F, N)`` float32, ncps's buffer (built on access)."""
        return self._wiring.mask(sensory=True)

    @property
    def make_positive_fn(self):
        """What keeps ``w, sensory_w, cm, gleak`` positive in a step (ncps's name): softplus
        with ``implicit_param_constraints``, else the identity."""
        return nn.softplus if self.implicit_param_constraints else _identity

    def add_weight(self, name: str, init_value, requires_grad: bool = True) -> mx.array:
        """Add parameter ``name`` with value ``init_value`` and return it (ncps's helper);
        ``requires_grad=False`` freezes it (left out of ``trainable_parameters()``)."""
        setattr(self, name, mx.array(init_value))
        if not requires_grad:
            self.freeze(recurse=False, keys=[name])
        return getattr(self, name)

    def beyond_ncps(self) -> str | None:
        """The option that takes this cell beyond ncps 1.0.1's (its semi-implicit solver, no
        fast weights, no routing), named as it was given, or None: what the fused kernel and
        the export to ncps cannot do."""
        if self.solver != "semi_implicit":
            return f"solver={self.solver!r} (ncps's cell has the semi-implicit solver only)"
        if self._fast is not None:
            return "fast_weights=True (Hebbian fast weights)"
        if self._routing is not None:
            return "routing=True (routing by agreement)"
        return None

    def apply_weight_constraints(self) -> None:
        """Clip ``w, sensory_w, cm, gleak`` at 0 (explicit-constraint mode, as ncps)."""
        if not self.implicit_param_constraints:
            for name in ("w", "sensory_w", "cm", "gleak"):
                setattr(self, name, mx.maximum(getattr(self, name), 0.0))

    def map_inputs(self, x: mx.array) -> mx.array:
        """Apply the input mapping to ``x`` ``(..., F)``."""
        if self.input_mapping in ("affine", "linear"):
            x = x * self.input_w
        if self.input_mapping == "affine":
            x = x + self.input_b
        return x

    def map_outputs(self, v: mx.array) -> mx.array:
        """Motor neurons of ``v`` ``(..., N)`` through the output mapping: ``(..., M)``."""
        output = v[..., : self.motor_size]
        if self.output_mapping in ("affine", "linear"):
            output = output * self.output_w
        if self.output_mapping == "affine":
            output = output + self.output_b
        return output

    def _synapse_params(self, w, erev, mu, sigma, mask, table) -> SynapseParams:
        """One synapse set's step constants, dense (``table`` None) or fan-in layout."""
        w = self.make_positive_fn(w) * (mask if table is None else table.valid)
        return SynapseParams(w * erev, w, mu, sigma, None if table is None else table.sources)

    def prepare(self, x: mx.array) -> Prepared:
        """Sensory synapse sums of all steps: ``x`` ``(T, B, F)`` -> numerator and denominator
        ``((T, B, N), (T, B, N))``; the step's :class:`LTCParams`."""
        sensory = self._synapse_params(
            self.sensory_w,
            self.sensory_erev,
            self.sensory_mu,
            self.sensory_sigma,
            self._sensory_sparsity_mask,
            self._sensory_fan_in,
        )
        numerator, denominator = synapse_sums(self.map_inputs(x), sensory)
        gleak = self.make_positive_fn(self.gleak)
        params = LTCParams(
            synapses=self._synapse_params(
                self.w, self.erev, self.mu, self.sigma, self._sparsity_mask, self._fan_in
            ),
            cm=self.make_positive_fn(self.cm),
            gleak=gleak,
            leak_current=gleak * self.vleak,
            fast_weights=None if self._fast is None else LTCFastWeights(self.erev, self._fast),
            routing=self._routing,
        )
        return Prepared((numerator, denominator), params)

    def step(self, inputs_t, params: LTCParams, state, timespans=1.0):
        """``ode_unfolds`` solver iterations over ``timespans`` (float or ``(B, 1)``) on the
        potentials ``(B, N)`` of ``state``.

        Returns ``(v_new, state_new)``; with fast weights the state also holds the traces,
        which add to the synapses' weights during the step and are updated after it.
        """
        sensory_numerator, sensory_denominator = inputs_t
        v, traces = state[..., : self.num_neurons], state[..., self.num_neurons :]
        synapses, fast = params.synapses, params.fast_weights
        if fast is not None:
            w = with_fast_weights(synapses.w, traces, fast.plan)
            synapses = synapses._replace(w_erev=w * fast.erev, w=w)
        if params.routing is not None:
            synapses = routed_synapses(v, synapses, params.routing)
        drive = params.leak_current + sensory_numerator  # the numerator's v-independent part
        solve = self._semi_implicit if self.solver == "semi_implicit" else self._explicit
        v = solve(v, drive, sensory_denominator, synapses, params, timespans)
        if fast is None:
            return v, v
        traces = hebbian_update(traces, v, fast.plan)
        return v, mx.concatenate([v, traces], axis=-1)

    def _semi_implicit(self, v, drive, sensory_denominator, synapses, params, timespans):
        """ncps's fused semi-implicit Euler update, ``ode_unfolds`` times: ``v`` ``(B, N)``."""
        cm_t = params.cm * (self.ode_unfolds / timespans)
        denominator_base = cm_t + params.gleak + sensory_denominator + self.epsilon
        for _ in range(self.ode_unfolds):
            numerator, denominator = synapse_sums(v, synapses)
            v = (cm_t * v + drive + numerator) / (denominator_base + denominator)
        return v

    def _explicit(self, v, drive, sensory_denominator, synapses, params, timespans):
        """``ode_unfolds`` steps of the explicit ``solver`` on the potentials ``v`` ``(B, N)``."""
        conductance = params.gleak + sensory_denominator

        def velocity(v):
            numerator, denominator = synapse_sums(v, synapses)
            return (drive + numerator - v * (conductance + denominator)) / params.cm

        step, h = SOLVERS[self.solver], timespans / self.ode_unfolds
        for _ in range(self.ode_unfolds):
            v = step(velocity, v, h)
        return v

    def output_of_state(self, state: mx.array) -> mx.array:
        """The step output a state stands for (before :meth:`map_outputs`): its potentials."""
        return state[..., : self.num_neurons]

    @keyword_aliases(inputs="x", states="state", elapsed_time="timespans")
    def __call__(self, x: mx.array, state: mx.array, timespans=1.0):
        """One step on ``x`` ``(B, F)``: returns ``(outputs (B, M), state_new)``.

        ``timespans`` (float or ``(B, 1)``) is the elapsed time. ncps's keyword names work too
        (``inputs``, ``states``, ``elapsed_time``); passing an argument under both names is a
        TypeError.
        """
        prepared = self.prepare(x[None])
        inputs = tuple(a[0] for a in prepared.inputs)
        v, state = self.step(inputs, prepared.params, state, timespans)
        return self.map_outputs(v), state

    def _extra_repr(self) -> str:
        return (
            f"units={self.num_neurons}, in_features={self.sensory_size}, "
            f"out_features={self.motor_size}, ode_unfolds={self.ode_unfolds}, "
            f"solver={self.solver!r}"
        )


def _match_keys(old_keys, old_slots, keys) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``keys``: whether it is among ``old_keys``, and that entry's slot (else 0)."""
    if old_keys.size == 0:
        return np.zeros(keys.size, bool), np.zeros(keys.size, np.int64)
    order = np.argsort(old_keys)
    position = np.minimum(np.searchsorted(old_keys[order], keys), old_keys.size - 1)
    found = old_keys[order][position] == keys
    return found, np.where(found, old_slots[order][position], 0)


def _identity(x: mx.array) -> mx.array:
    return x


def _uniform(name: str, shape: tuple) -> mx.array:
    low, high = _INIT_RANGES[name]
    return mx.random.uniform(low, high, shape)
