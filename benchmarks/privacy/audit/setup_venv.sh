#!/usr/bin/env bash
# Creates benchmarks/.venvs/privacy-audit with the peer tools of the privacy-audit benchmark: ART's
# membership-inference attacks and ML Privacy Meter. Never part of mlsecops' own dependencies; the
# folder is ignored by git (its own .gitignore).
#
# privacy-meter 1.0.1 declares no dependencies and imports tensorflow, torch and opacus at the top of
# its model module although its scikit-learn path uses none of them; the peer runner (_peers.py)
# registers empty placeholder modules for those three instead of installing ~1 GB it does not use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venvs="$root/benchmarks/.venvs"
venv="$venvs/privacy-audit"
mkdir -p "$venvs"
[ -f "$venvs/.gitignore" ] || printf '*\n' > "$venvs/.gitignore"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "adversarial-robustness-toolbox==1.20.1" "privacy-meter==1.0.1" \
  numpy scipy scikit-learn packaging pandas matplotlib seaborn jinja2 pillow
echo "ready: $venv"
