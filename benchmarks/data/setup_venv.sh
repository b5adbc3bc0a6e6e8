#!/usr/bin/env bash
# Create benchmarks/.venv-data: the reference tools (cleanlab, adversarial-robustness-toolbox, pandas),
# installed here only, never in mlsecops' own dependencies. torch, numpy, scikit-learn and mlsecops
# itself come from the project venv through a .pth file, so nothing large is downloaded twice.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$here/benchmarks/.venv-data"
if [ ! -x "$venv/bin/python" ]; then
  "$here/.venv/bin/python" -m venv "$venv"
fi
site_main="$("$here/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
site_bench="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$venv/bin/pip" install -q "cleanlab>=2.6" "adversarial-robustness-toolbox>=1.17" "pandas>=2.1" "mlxtend>=0.23"
# Appended last on sys.path: the bench venv's own packages win, the project venv fills the rest.
printf '%s\n%s\n' "$site_main" "$here/src" > "$site_bench/zz_mlsecops_main.pth"
echo "benchmark venv ready: $venv"
