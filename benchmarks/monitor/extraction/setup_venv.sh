#!/usr/bin/env bash
# Creates benchmarks/.venvs/extraction-art with ART, for the output-side defences of the extraction
# benchmark (its postprocessors: Rounded, HighConfidence, ClassLabels, GaussianNoise, ReverseSigmoid).
# Never part of mlsecops' own dependencies; the folder is ignored by git (its own .gitignore).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venvs="$root/benchmarks/.venvs"
venv="$venvs/extraction-art"
mkdir -p "$venvs"
[ -f "$venvs/.gitignore" ] || printf '*\n' > "$venvs/.gitignore"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "adversarial-robustness-toolbox==1.20.1" numpy scipy scikit-learn packaging  # ART imports packaging without declaring it
echo "ready: $venv"
