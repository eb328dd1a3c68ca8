"""Wirings: sparse synapse graphs of neural circuits (numpy + networkx, no MLX import)."""

from .base import Wiring
from .classic import NCP, AutoNCP, FullyConnected, Random
from .sampling import EXACT_DRAW_LIMIT

__all__ = ["Wiring", "FullyConnected", "Random", "NCP", "AutoNCP", "EXACT_DRAW_LIMIT"]
