#!/usr/bin/env bash
# Creates benchmarks/.venv-robustness with the peer tools (ART, torchattacks) for the robustness
# benchmark. Never part of mlsecops' own dependencies. torch comes from the local wheel cache.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/benchmarks/.venv-robustness"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q --find-links /opt/wheels "torch==2.13.0"
"$venv/bin/pip" install -q "adversarial-robustness-toolbox==1.20.1" scikit-learn numpy scipy pydantic pydantic-settings
# torchattacks declares torchvision, which has no build for this torch; the attacks we use do not need it.
"$venv/bin/pip" install -q --no-deps torchattacks
"$venv/bin/pip" install -q requests tqdm packaging statsmodels  # statsmodels: ART randomized smoothing
"$venv/bin/pip" install -q -e "$root"
echo "ready: $venv"
