"""ncps-mlx: neural circuit policies (LTC, CfC, NCP wirings) on Apple's MLX."""

from . import wirings
from .wirings import NCP, AutoNCP, FullyConnected, Random, Wiring

__version__ = "0.1.0"

__all__ = ["wirings", "Wiring", "FullyConnected", "Random", "NCP", "AutoNCP", "__version__"]
