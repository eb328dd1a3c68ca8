"""One small, built instance of every wiring class, for plots, docs and tests."""

from __future__ import annotations

from .adaptive import AdaptiveWiring
from .attention import AttentionWiring, CrossAttentionWiring
from .base import Wiring
from .classic import NCP, AutoNCP, FullyConnected, Random
from .compose import merge_wirings
from .domain import LanguageWiring, SignalProcessingWiring, VisionWiring
from .dynamic import DynamicRoutingWiring, MetaWiring
from .multiscale import HierarchicalWiring, MultiScaleWiring


def _adaptive() -> AdaptiveWiring:
    """An AdaptiveWiring after one prune-and-grow update (importance: the synapses' order)."""
    wiring = AdaptiveWiring(Random(10, 2, sparsity_level=0.7, random_seed=1), prune_fraction=0.3)
    wiring.build(3)
    wiring.update_connectivity(importance_scores=range(wiring.synapse_count))
    return wiring


def example_wirings() -> dict[str, Wiring]:
    """``{class name: built wiring}``: a small instance of every public wiring class.

    Small enough (at most 24 neurons) that every synapse stays visible in a plot; the same
    instances illustrate the tutorials. Fresh objects on every call, built with fixed seeds.
    """
    wirings = {
        "FullyConnected": (FullyConnected(6, output_dim=2), 3),
        "Random": (Random(10, output_dim=2, sparsity_level=0.7), 3),
        "NCP": (NCP(6, 4, 2, 2, 2, recurrent_command_synapses=3, motor_fanin=2), 4),
        "AutoNCP": (AutoNCP(16, 2), 4),
        "MultiScaleWiring": (MultiScaleWiring(4, 4, 4, 2), 3),
        "HierarchicalWiring": (HierarchicalWiring([6, 5, 4, 2]), 3),
        "AttentionWiring": (AttentionWiring(4, 2, 4, output_size=2), 3),
        "CrossAttentionWiring": (CrossAttentionWiring(4, 4, 4, 2), 3),
        "SignalProcessingWiring": (SignalProcessingWiring(8, 3, 4), 8),
        "VisionWiring": (VisionWiring(4, 4, [1, 2]), 16),
        "LanguageWiring": (LanguageWiring(4, 4, 2, 2), 4),
        "DynamicRoutingWiring": (DynamicRoutingWiring(2, 2, num_input_capsules=3), 3),
        "AdaptiveWiring": (_adaptive(), 3),
        "MetaWiring": (MetaWiring(4, 4, 2), 3),
        "ComposedWiring": (
            merge_wirings(AutoNCP(10, 2), Random(5, 2, 0.5), cross_fan_in=1, seed=0),
            3,
        ),
    }
    for wiring, input_dim in wirings.values():
        wiring.build(input_dim)
    return {name: wiring for name, (wiring, _) in wirings.items()}
