"""The scanner-only install (``pip install mlsecops``, no ``ml`` extra): numpy, scipy and scikit-learn
are not installed, yet scanning, signing, the workspace, the audit trail and pipelines of those checks
work, and every command or stage that needs arrays names the extra in one line (issue 12 item 2).

Each case runs the CLI in a subprocess where importing numpy, scipy or sklearn fails as on a machine
without them (a meta-path finder raising ModuleNotFoundError).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

_BLOCKED = ("numpy", "scipy", "sklearn", "joblib", "torch", "pandas", "pyarrow", "onnxruntime")
_RUN = f"""
import sys

class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {_BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Blocked())
from mlsecops.cli import main
code = main(sys.argv[1:])
leaked = [m for m in {_BLOCKED!r} if m in sys.modules]
assert not leaked, f"imported {{leaked}}"
raise SystemExit(code)
"""
HINT = 'pip install "mlsecops[ml]"'


def _light(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "MLSECOPS_HOME": str(cwd / ".mlsecops"), "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-c", _RUN, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))

    class _Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("true",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Evil()))
    (tmp_path / "data.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    return tmp_path


def test_scan_sign_and_workspace_work_without_numpy(project: Path) -> None:
    assert _light(project, "scan", "model.pkl").returncode == 0
    evil = _light(project, "scan", "evil.pkl", "-f", "json")
    assert evil.returncode == 1 and "os.system" in evil.stdout
    assert _light(project, "init").returncode == 0
    assert _light(project, "keys", "create", "rel").returncode == 0
    key = ".mlsecops/keys/rel.key"
    signed = _light(project, "sign", "model.pkl", "--key", key, "--signature", "m.sig")
    assert signed.returncode == 0, signed.stderr
    verified = _light(project, "verify", "model.pkl", "--key", key + ".pub", "--signature", "m.sig")
    assert verified.returncode == 0, verified.stderr
    assert _light(project, "audit", "verify").returncode == 0
    pipeline = project / "scan.yaml"
    pipeline.write_text(
        "name: light\nstages:\n  - {name: scan, check: artifact.scan, paths: [model.pkl]}\n"
        "policy:\n  - {stage: scan, max_severity: low}\n"
    )
    run = _light(project, "run", "scan.yaml")
    assert run.returncode == 0, run.stderr


def test_array_commands_and_stages_name_the_ml_extra(project: Path) -> None:
    for args in (
        ("data", "profile", "data.csv", "--label", "label"),
        ("data", "poison", "data.csv", "--label", "label"),
        ("assess", "robustness", "-m", "model.pkl", "-d", "data.csv", "--attack", "square"),
    ):
        r = _light(project, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert HINT in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (
            args,
            r.stderr,
        )
    pipeline = project / "poison.yaml"
    pipeline.write_text(
        "name: needs-ml\nstages:\n  - {name: poison, check: data.poison, paths: [data.csv], options: {label: label}}\n"
        "policy:\n  - {stage: poison, max_severity: high}\n"
    )
    assert _light(project, "init").returncode == 0
    run = _light(project, "run", "poison.yaml")
    assert run.returncode == 2 and HINT in run.stderr, run.stderr
