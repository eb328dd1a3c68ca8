"""Hybrid layers (whole sequence vs step loop) and our Mamba block vs mlx-lm's.

    python benchmarks/hybrid.py [--quick] [--repeats N]

Prints the ``hybrid`` and ``mamba`` families' tables; the code is :mod:`ncps_mlx.apps.bench.hybrid`
and :mod:`ncps_mlx.apps.bench.mamba`, and ``python benchmarks/run_all.py`` runs them with every
other benchmark.
"""

import sys

from ncps_mlx.apps.bench import hybrid, mamba

if __name__ == "__main__":
    hybrid.main(sys.argv[1:])
    mamba.main(sys.argv[1:])
