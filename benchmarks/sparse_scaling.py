"""LTC forward+backward at fixed fan-in (N = 1k/4k/16k): sparse vs dense layout vs ncps.

    python benchmarks/sparse_scaling.py [--quick] [--repeats N]

Prints the ``sparse`` family's table; the code is :mod:`ncps_mlx.apps.bench.sparse`, and
``python benchmarks/run_all.py`` runs it with every other benchmark.
"""

from ncps_mlx.apps.bench.sparse import main

if __name__ == "__main__":
    main()
