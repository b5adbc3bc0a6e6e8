#!/usr/bin/env bash
# Create benchmarks/.venv-signing with the peer tool (model-signing, plus the pyopenssl it needs but
# does not declare) and blake3 (never our dependencies).
#
#   benchmarks/signing/setup_venv.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/benchmarks/.venv-signing"
base_python="$("$root/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')/bin/python3"
if [ ! -x "$venv/bin/python" ]; then
  "$base_python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet model-signing pyopenssl blake3
"$venv/bin/pip" list 2>/dev/null | grep -i -E "^(model-signing|blake3|pyopenssl|cryptography) "
