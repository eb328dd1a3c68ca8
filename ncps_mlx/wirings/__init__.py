"""Wirings: sparse synapse graphs of neural circuits (numpy + networkx, no MLX import)."""

from . import patterns, routing
from .adaptive import AdaptiveWiring
from .attention import AttentionWiring, CrossAttentionWiring
from .base import Wiring
from .classic import NCP, AutoNCP, FullyConnected, Random
from .compose import ComposedWiring, merge_wirings, stack_wirings
from .domain import LanguageWiring, SignalProcessingWiring, VisionWiring
from .dynamic import DynamicRoutingWiring, MetaWiring
from .grouped import GroupedWiring
from .multiscale import HierarchicalWiring, MultiScaleWiring
from .ncps_configs import to_ncps_config, to_ncps_wiring
from .patterns import add_attention_head, add_residual_block, add_skip_connection, connect
from .sampling import EXACT_DRAW_LIMIT

__all__ = [
    "Wiring",
    "GroupedWiring",
    "FullyConnected",
    "Random",
    "NCP",
    "AutoNCP",
    "MultiScaleWiring",
    "HierarchicalWiring",
    "AttentionWiring",
    "CrossAttentionWiring",
    "SignalProcessingWiring",
    "VisionWiring",
    "LanguageWiring",
    "DynamicRoutingWiring",
    "AdaptiveWiring",
    "MetaWiring",
    "ComposedWiring",
    "stack_wirings",
    "merge_wirings",
    "patterns",
    "routing",
    "connect",
    "add_skip_connection",
    "add_residual_block",
    "add_attention_head",
    "EXACT_DRAW_LIMIT",
    "to_ncps_config",
    "to_ncps_wiring",
]
