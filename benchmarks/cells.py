"""LTC/CfC forward and train-step time: ncps_mlx vs ncps 1.0.1 (PyTorch), same weights.

    python benchmarks/cells.py [--quick] [--repeats N]

Prints the ``cells`` family's table; the code is :mod:`ncps_mlx.apps.bench.cells`, and
``python benchmarks/run_all.py`` runs it with every other benchmark.
"""

from ncps_mlx.apps.bench.cells import main

if __name__ == "__main__":
    main()
