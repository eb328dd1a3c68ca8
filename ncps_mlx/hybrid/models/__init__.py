"""Models built from the hybrid layers: :class:`~ncps_mlx.hybrid.HybridModel` and the
:class:`~ncps_mlx.hybrid.HybridBuilder` that stacks it from a pattern, the conv-transformer
encoder and the liquid encoder-decoder."""
