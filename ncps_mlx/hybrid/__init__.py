"""Hybrid sequence layers whose projections are masked by wirings (work in progress)."""

from .liquid import LiquidLayer
from .wired_linear import QuantizedWiredLinear, WiredLinear, wiring_mask

__all__ = ["WiredLinear", "QuantizedWiredLinear", "wiring_mask", "LiquidLayer"]
