"""Run one peer scanner over the labelled corpus, in-process, and write per-file outcomes as JSON.

Runs inside ``benchmarks/.venv-scanner`` (the peers are never our dependencies)::

    benchmarks/.venv-scanner/bin/python benchmarks/scanner/peers.py TOOL CORPUS OUT.json

TOOL is picklescan, modelscan, fickling or modelaudit. For every file we record whether the tool
flagged it at all (``flag``: anything other than a clean result), whether it flagged it at its top
level (``strict``: dangerous / critical / overtly malicious), whether it reported an error (``error``),
whether it raised (``crash``) and the wall time. Each file has a 60 s alarm.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("PROMPTFOO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MODELAUDIT_TELEMETRY_DISABLED", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NO_ANALYTICS", "1")


class _Timeout(Exception):
    pass


def _alarm(_sig: int, _frame: object) -> None:
    raise _Timeout()


def run_picklescan(path: str) -> dict[str, Any]:
    from picklescan.scanner import SafetyLevel, scan_file_path

    r = scan_file_path(path)
    dangerous = r.issues_count > 0 or r.infected_files > 0
    suspicious = any(g.safety != SafetyLevel.Innocuous for g in r.globals)
    return {
        "flag": dangerous or suspicious or bool(r.scan_err),
        "strict": dangerous,
        "error": bool(r.scan_err),
    }


def run_modelscan(path: str) -> dict[str, Any]:
    from modelscan.modelscan import ModelScan

    res = ModelScan().scan(path)
    sev = res["summary"]["total_issues_by_severity"]
    errors = bool(res.get("errors"))
    return {
        "flag": res["summary"]["total_issues"] > 0 or errors,
        "strict": sev.get("CRITICAL", 0) + sev.get("HIGH", 0) > 0,
        "error": errors,
    }


def run_fickling(path: str) -> dict[str, Any]:
    import fickling

    r = fickling.scan_file(path, graceful=True)
    sev = str(getattr(r, "severity", ""))
    strict = any(k in sev for k in ("OVERTLY_MALICIOUS", "LIKELY_UNSAFE"))
    errors = getattr(r, "errors", None) or []
    return {"flag": not r.is_safe, "strict": strict, "error": bool(errors)}


def run_modelaudit(path: str) -> dict[str, Any]:
    from modelaudit.core import scan_model_directory_or_file

    r = scan_model_directory_or_file(path)
    d = r.model_dump() if hasattr(r, "model_dump") else dict(r)
    sev = [str(i.get("severity", "")).lower() for i in d.get("issues", [])]
    return {
        "flag": any(s in ("critical", "warning") for s in sev) or bool(d.get("has_errors")),
        "strict": "critical" in sev,
        "error": bool(d.get("has_errors")),
    }


TOOLS = {
    "picklescan": run_picklescan,
    "modelscan": run_modelscan,
    "fickling": run_fickling,
    "modelaudit": run_modelaudit,
}


def main() -> None:
    tool, corpus, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    labels = json.loads((corpus / "labels.json").read_text())
    fn = TOOLS[tool]
    signal.signal(signal.SIGALRM, _alarm)
    rows = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    for rec in labels:
        path = str(corpus / rec["path"])
        t0 = time.perf_counter()
        row: dict[str, Any] = {"path": rec["path"]}
        saved = os.dup(1), os.dup(2)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            signal.alarm(60)
            row.update(fn(path))
            row["crash"] = False
        except _Timeout:
            row.update(flag=False, strict=False, error=True, crash=True, why="timeout 60 s")
        except BaseException as err:  # the peer raised: a crash
            row.update(
                flag=False,
                strict=False,
                error=True,
                crash=True,
                why=f"{type(err).__name__}: {str(err)[:200]}",
                tb=traceback.format_exc()[-400:],
            )
        finally:
            signal.alarm(0)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    out.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
