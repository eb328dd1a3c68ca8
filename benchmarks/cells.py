"""LTC/CfC forward and train-step time: ncps_mlx vs ncps 1.0.1 (eager and torch.compile) and the
same cells in JAX, same weights; and a scale table of ncps_mlx alone.

    python benchmarks/cells.py [--quick] [--repeats N] [--torch-compile {model,cell,off}]
        [--jax | --no-jax] [--scale | --no-scale]

Prints the ``cells`` family's tables; the code is :mod:`ncps_mlx.apps.bench.cells` (its
docstring says what each option does), and ``python benchmarks/run_all.py`` runs it with every
other benchmark.
"""

from ncps_mlx.apps.bench.cells import main

if __name__ == "__main__":
    main()
