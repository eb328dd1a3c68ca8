#!/bin/bash
# Install the package of gpu_scratch/head.tar (a git archive) with the [cuda] extra on the device, from
# wheels carried in /opt/mlxw (mlx, mlx-cuda-13 in two parts with their sums) and gpu_scratch/wheels.
cd /opt/mlxw && cat part_aa part_ab > mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl && sha256sum -c sums || exit 1
cd - >/dev/null
cp gpu_scratch/wheels/*.whl /opt/mlxw/
rm -rf /tmp/head && mkdir -p /tmp/head && tar -xf gpu_scratch/head.tar -C /tmp/head
cd /tmp/head
python3 -m pip install --no-index --find-links /opt/mlxw -e ".[cuda]" > $OUT/pip_cuda.log 2>&1; echo "pip install -e .[cuda]: rc=$?"; tail -2 $OUT/pip_cuda.log
python3 -m pip install -q --no-index --find-links /opt/mlxw ncps==1.0.1 pytest-xdist hypothesis >> $OUT/pip_cuda.log 2>&1; echo "test tools rc=$?"
python3 -m pip list 2>/dev/null | grep -i "^mlx\|^ncps\|^torch \|^jax \|xdist\|hypothesis\|^future" | tee $OUT/pip_list.txt
python3 -c "import mlx.core as mx; print('default device:', mx.default_device())" 2>&1 | tee $OUT/device.txt
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a $OUT/device.txt
