"""Model files and ncps weight import and export, under their first import path; they live in
:mod:`ncps_mlx.serialization`."""

from .serialization import export_ncps_state_dict, load_model, load_ncps_state_dict, save_model

__all__ = ["load_ncps_state_dict", "export_ncps_state_dict", "save_model", "load_model"]
