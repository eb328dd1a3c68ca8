"""Wiring-masked sequence layers: each maps ``(B, T, D) -> (B, T, D)`` causally, follows the
state contract of :mod:`ncps_mlx.streaming` (``layer(x, cache=None) -> (y, cache)``,
``make_cache(batch, dtype)``) and has a one-token ``step(x_t, cache)``."""
