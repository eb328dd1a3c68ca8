"""Settings for the whole test suite, made before any test module starts MLX.

The tests compare float32 results with float32 references (sequential loops, ncps, numpy) at
tolerances of about 1e-5. On CUDA and on M5-class Apple GPUs MLX runs float32 matmuls as TF32
unless ``MLX_ENABLE_TF32=0`` (about 1e-3 relative error), so the suite turns TF32 off; a value
set in the environment is kept.
"""

import os

os.environ.setdefault("MLX_ENABLE_TF32", "0")
