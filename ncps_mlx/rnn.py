"""The sequence modules, under their first import path; they live in :mod:`ncps_mlx.sequence`."""

from .sequence import CTGRU, CTRNN, LTC, ODELSTM, CfC, LiquidSequence

__all__ = ["LiquidSequence", "LTC", "CfC", "CTRNN", "CTGRU", "ODELSTM"]
