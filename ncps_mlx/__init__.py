"""ncps-mlx: neural circuit policies (LTC, CfC, NCP wirings) on Apple's MLX."""

from . import io, wirings
from ._version import __version__
from .cells import CfCCell, CTGRUCell, CTRNNCell, LSTMCell, LTCCell, ODELSTMCell, WiredCfCCell
from .quantization import QuantizationReport, astype, quantize, weight_bytes
from .sequence import CTGRU, CTRNN, LTC, ODELSTM, CfC
from .streaming import StreamingRunner
from .wirings import NCP, AutoNCP, FullyConnected, Random, Wiring

__all__ = [
    "wirings",
    "io",
    "Wiring",
    "FullyConnected",
    "Random",
    "NCP",
    "AutoNCP",
    "LTCCell",
    "CfCCell",
    "WiredCfCCell",
    "LSTMCell",
    "CTRNNCell",
    "CTGRUCell",
    "ODELSTMCell",
    "LTC",
    "CfC",
    "CTRNN",
    "CTGRU",
    "ODELSTM",
    "StreamingRunner",
    "quantize",
    "astype",
    "weight_bytes",
    "QuantizationReport",
    "__version__",
]
