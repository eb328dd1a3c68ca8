"""Sequence modules: the time loop around a cell, with ncps's call contract.

:class:`LiquidSequence` (``base.py``) owns the loop, input layouts, timespans, padding masks and
mixed memory; :class:`LTC`, :class:`CfC` and the continuous-time baselines :class:`CTRNN`,
:class:`CTGRU` and :class:`ODELSTM` put a cell from :mod:`ncps_mlx.cells` inside it.
"""

from .base import LiquidSequence
from .cfc import CfC
from .ct_baselines import CTGRU, CTRNN, ODELSTM
from .ltc import LTC

__all__ = ["LiquidSequence", "LTC", "CfC", "CTRNN", "CTGRU", "ODELSTM"]
