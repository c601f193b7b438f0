#!/usr/bin/env bash
# LOSO at SAMM's size on the device's GPU, Keras on JAX (run by hand; see BENCHMARKS.md,
# "LOSO at SAMM's size"). The device image has JAX, pyarrow, pandas, fsspec, h5py and rich,
# but no TensorFlow, no Ray and no registry: keras, optree and namex travel as wheels.
#
# Here, once, in the repository's root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 optree namex
# Then one device call with carry [".whl"]: bash tests/benchmarks/device_loso.sh
#
# Prints one JSON line per run (bench_loso.py): the 33 fits stacked in one task at the
# paper's batch size, then fold by fold on a few fits and epochs, for comparison. With
# SMALL=1 it runs a few-second version of both, to check the set-up.
set -euo pipefail
out="${OUT:-/tmp}"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi -L || true
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
bench=(python3 tests/benchmarks/bench_loso.py --net paper --cpus 1)
stacked=()  # the recipe's 50 epochs
if [[ "${SMALL:-0}" == 1 ]]; then
  bench+=(--subjects 4 --windows 400)
  stacked=(--epochs 1)
fi
"${bench[@]}" --how stacked "${stacked[@]}" 2>"$out/stacked.err" | tee -a "$out/loso_gpu.jsonl"
"${bench[@]}" --how folds --folds 2 --epochs 5 2>"$out/folds.err" | tee -a "$out/loso_gpu.jsonl"
