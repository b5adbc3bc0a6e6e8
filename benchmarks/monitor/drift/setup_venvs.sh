#!/usr/bin/env bash
# Create one benchmark-only venv per peer drift tool (never our dependencies; gitignored):
#   benchmarks/.venv-drift-evidently, benchmarks/.venv-drift-alibi, benchmarks/.venv-drift-nannyml
# Each peer gets its own venv because their pins (pandas, numpy, scipy) conflict.
#
#   benchmarks/monitor/drift/setup_venvs.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
base_python="$("$root/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')/bin/python3"
status=0
for peer in evidently alibi nannyml; do
  case "$peer" in
    evidently) pkgs="evidently pandas<3" ;;  # evidently 0.7 imports a helper pandas 3 removed
    alibi) pkgs="alibi-detect" ;;
    nannyml) pkgs="nannyml statsmodels" ;;  # nannyml imports statsmodels without requiring it
  esac
  venv="$root/benchmarks/.venv-drift-$peer"
  if [ ! -x "$venv/bin/python" ]; then
    "$base_python" -m venv "$venv"
  fi
  if "$venv/bin/pip" install --quiet $pkgs psutil; then
    "$venv/bin/pip" list 2>/dev/null | grep -i -E "^(evidently|alibi-detect|nannyml|numpy|pandas|scipy) "
  else
    echo "could not install $pkgs into $venv" >&2
    status=1
  fi
done
exit $status
