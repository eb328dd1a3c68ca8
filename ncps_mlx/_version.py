"""The version of ncps-mlx: the one place it is written.

``pyproject.toml`` reads it for the package metadata (setuptools' ``attr:``, parsed without
importing the package), ``ncps_mlx.__version__`` and ``ncps-mlx --version`` import it, so a source
checkout, an editable install and a built wheel all report the same version.
"""

__version__ = "0.1.0"
