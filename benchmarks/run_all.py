"""Every benchmark in one command: ncps_mlx against ncps, mlx-lm and step loops.

    python benchmarks/run_all.py                  # full sizes (~15 min on two CPU cores)
    python benchmarks/run_all.py --quick          # small sizes, under two minutes
    python benchmarks/run_all.py --only cells,mamba --out results/

The same program as ``ncps-mlx bench`` (its parser and errors); see
:mod:`ncps_mlx.apps.bench.suite`. Writes
``bench_results/bench.md`` (also printed) and ``bench_results/bench.json``.
"""

import sys

from ncps_mlx.apps.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
