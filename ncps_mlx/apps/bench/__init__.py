"""Benchmarks of ncps_mlx against its references, measured in one run on one machine.

Families (each a module with ``run(quick, repeats) -> record`` and a command line
``python -m ncps_mlx.apps.bench.<family> [--quick] [--repeats N] [--json PATH]``):

* :mod:`~ncps_mlx.apps.bench.cells`: LTC/CfC forward and train step vs ncps 1.0.1 (PyTorch).
* :mod:`~ncps_mlx.apps.bench.sparse`: LTC at fixed fan-in, sparse vs dense layout vs ncps.
* :mod:`~ncps_mlx.apps.bench.wirings`: wiring construction vs ncps.
* :mod:`~ncps_mlx.apps.bench.hybrid`: hybrid layers, whole sequence vs step-by-step loop.
* :mod:`~ncps_mlx.apps.bench.mamba`: our Mamba block vs mlx-lm's.

:mod:`~ncps_mlx.apps.bench.suite` runs them all (``ncps-mlx bench``, ``benchmarks/run_all.py``);
:mod:`~ncps_mlx.apps.bench.timing` holds the timers, peak-memory readers and the op counter, and
:mod:`~ncps_mlx.apps.bench.report` the records and their Markdown. The references (torch + ncps,
mlx-lm) are optional and imported only when a family runs.
"""
