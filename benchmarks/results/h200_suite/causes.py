"""Two causes named for GPU failures of the suite, checked directly on the device:

    python3 causes.py   # causes.log

MLX 0.32.4 CUDA: RoPE over 200 rows of (rows, 4 heads, 1 position, 8 dims) and over 64; a 4-bit
quantized Linear(32, 16) saved and reloaded as .npz and as .safetensors, then applied.
"""

import mlx.core as mx
import mlx.nn as nn

for rows in (64, 200):
    try:
        mx.eval(
            mx.fast.rope(
                mx.zeros((rows, 4, 1, 8)), 8, traditional=False, base=1e4, scale=1.0, offset=0
            )
        )
        print(f"rope over {rows} rows: ok")
    except RuntimeError as error:
        print(f"rope over {rows} rows: {error}")
layer = nn.Linear(32, 16)
nn.quantize(layer, group_size=32, bits=4)
for suffix in ("npz", "safetensors"):
    path = f"/tmp/q.{suffix}"
    layer.save_weights(path)
    twin = nn.Linear(32, 16)
    nn.quantize(twin, group_size=32, bits=4)
    twin.load_weights(path)
    try:
        mx.eval(twin(mx.ones((3, 32))))
        print(f"quantized layer loaded from .{suffix}: ok")
    except RuntimeError as error:
        print(f"quantized layer loaded from .{suffix}: {error}")
