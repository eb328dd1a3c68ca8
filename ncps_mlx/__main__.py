"""``python -m ncps_mlx`` runs the ``ncps-mlx`` command line."""

import sys

from .cli import main

sys.exit(main())
