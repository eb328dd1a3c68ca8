"""Wiring construction (up to an NCP of 50,000 neurons): ncps_mlx vs ncps 1.0.1.

    python benchmarks/wiring_build.py [--quick] [--repeats N]

Prints the ``wirings`` family's table; the code is :mod:`ncps_mlx.apps.bench.wirings`, and
``python benchmarks/run_all.py`` runs it with every other benchmark.
"""

from ncps_mlx.apps.bench.wirings import main

if __name__ == "__main__":
    main()
