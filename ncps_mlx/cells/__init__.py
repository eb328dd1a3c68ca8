"""MLX cells driven by a wiring: one step, state in and state out.

Each cell's ``prepare`` returns its per-call step constants as a NamedTuple (``CfCParams``,
``LTCParams``, ...): the contract described in :mod:`ncps_mlx.cells.common`.
"""

from .cfc import CfCCell, CfCParams
from .common import ACTIVATIONS, DenseParams, Prepared, lecun_tanh
from .ctgru import CTGRUCell, CTGRUParams
from .ctrnn import CTRNNCell, CTRNNParams
from .lstm import LSTMCell, LSTMParams
from .ltc import LTCCell, LTCFastWeights, LTCParams
from .ltc_synapses import SynapseParams
from .odelstm import ODELSTMCell, ODELSTMParams
from .wired_cfc import WiredCfCCell, WiredCfCLayerParams, WiredCfCParams

__all__ = [
    "CfCCell",
    "LTCCell",
    "WiredCfCCell",
    "LSTMCell",
    "CTRNNCell",
    "CTGRUCell",
    "ODELSTMCell",
    "Prepared",
    "DenseParams",
    "CfCParams",
    "WiredCfCParams",
    "WiredCfCLayerParams",
    "LTCParams",
    "LTCFastWeights",
    "SynapseParams",
    "LSTMParams",
    "CTRNNParams",
    "CTGRUParams",
    "ODELSTMParams",
    "ACTIVATIONS",
    "lecun_tanh",
]
