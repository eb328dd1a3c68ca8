"""MLX cells driven by a wiring: one step, state in and state out."""

from .cfc import CfCCell
from .common import ACTIVATIONS, Prepared, lecun_tanh
from .ctgru import CTGRUCell
from .ctrnn import CTRNNCell
from .lstm import LSTMCell
from .ltc import LTCCell
from .odelstm import ODELSTMCell
from .wired_cfc import WiredCfCCell

__all__ = [
    "CfCCell",
    "LTCCell",
    "WiredCfCCell",
    "LSTMCell",
    "CTRNNCell",
    "CTGRUCell",
    "ODELSTMCell",
    "Prepared",
    "ACTIVATIONS",
    "lecun_tanh",
]
