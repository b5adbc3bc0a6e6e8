#!/usr/bin/env bash
# Create benchmarks/.venv-scanner with the peer scanners (never our dependencies).
#
#   benchmarks/scanner/setup_venv.sh
#
# The venv also gets h5py (to write realistic Keras .h5 files for the corpus) and onnx.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/benchmarks/.venv-scanner"
base_python="$("$root/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')/bin/python3"
if [ ! -x "$venv/bin/python" ]; then
  "$base_python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet modelscan picklescan fickling modelaudit h5py onnx
"$venv/bin/pip" list 2>/dev/null | grep -i -E "^(modelscan|picklescan|fickling|modelaudit|h5py|onnx|numpy) "
