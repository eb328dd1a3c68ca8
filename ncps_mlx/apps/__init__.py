"""Applications built on the library: the ``ncps-mlx`` command line (:mod:`~ncps_mlx.apps.cli`),
the demo (:mod:`~ncps_mlx.apps.demo`) and the benchmark suite (:mod:`~ncps_mlx.apps.bench`).

Nothing in the library imports from here.
"""
