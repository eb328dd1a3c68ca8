#!/bin/bash
# The suite on the device with the [cuda] extra. Wheels: /opt/mlxw (mlx, mlx-cuda-13 parts, ncps) + gpu_scratch/wheels.
cd /opt/mlxw && cat part_aa part_ab > mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl && sha256sum -c sums || exit 1
cd - >/dev/null
cp gpu_scratch/wheels/*.whl /opt/mlxw/
rm -rf /tmp/head && mkdir -p /tmp/head && tar -xf gpu_scratch/head.tar -C /tmp/head && cd /tmp/head
python3 -c "import mlx" 2>/dev/null && echo "mlx was already installed" || echo "no mlx before"
python3 -m pip install --no-index --find-links /opt/mlxw -e ".[cuda]" > $OUT/pip_cuda.log 2>&1; echo "pip install -e .[cuda]: rc=$?"; tail -3 $OUT/pip_cuda.log
python3 -m pip install -q --no-index --find-links /opt/mlxw ncps==1.0.1 pytest-xdist hypothesis >> $OUT/pip_cuda.log 2>&1; echo "test tools rc=$?"
python3 -m pip list 2>/dev/null | grep -i "^mlx\|^ncps\|^torch \|^jax \|xdist" | tee $OUT/pip_list.txt
python3 -c "import mlx.core as mx; print('default device:', mx.default_device())" 2>&1 | tee $OUT/device.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a $OUT/device.txt
ncps-mlx --version | tee -a $OUT/device.txt
start=$(date +%s)
timeout ${1:-420} python3 -m pytest -q -n 8 -p no:cacheprovider > $OUT/suite.log 2>&1; echo "pytest rc=$? in $(( $(date +%s) - start )) s"
tail -25 $OUT/suite.log
