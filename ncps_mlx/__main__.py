"""``python -m ncps_mlx`` runs the ``ncps-mlx`` command line."""

import sys

from .apps.cli import main

sys.exit(main())
