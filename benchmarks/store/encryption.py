"""Encryption at rest benchmark: the cost of storing, registering and loading a 200 MB model blob in an
encrypted workspace against a plain one, side by side in one run.

    nice -n 10 .venv/bin/python benchmarks/store/encryption.py [--repeats 3] [--mib 200]

Operations, each in a fresh process (imports and workspace opening excluded from the timing; the
source file is in the page cache):

- ``store``: ``ArtifactStore.put_file`` of the model (plain: one pass, hash and copy; encrypted: hash
  pass, then encrypt pass re-hashing, fsync, rename);
- ``register``: ``Registry.register`` of the model file (store, scan of the stored bytes, database
  records and audit event), what ``mlsecops registry register`` does after start-up;
- ``read``: ``ArtifactStore.open`` read to the end (decrypted, authenticated and re-hashed when
  encrypted; plain reads are not hashed);
- ``load``: ``ArtifactStore.copy_out`` to a private file, the step ``mlsecops serve``'s loader takes
  before verifying and loading a registered model.

Peak memory is the process's maximum RSS. The median of ``--repeats`` runs is reported, with min and
max. Writes ``benchmarks/results/encryption-at-rest.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / ".work" / "encryption"
RESULTS = ROOT / "benchmarks" / "results"
OPS = ("store", "register", "read", "load")
MODES = ("plain", "encrypted")


def _workspace(mode: str, tag: str) -> Any:
    from mlsecops.store import Workspace
    from mlsecops.store.at_rest import enable_encryption
    from mlsecops.store.encryption import KekSource

    home = WORK / f"ws-{mode}-{tag}"
    shutil.rmtree(home, ignore_errors=True)
    ws = Workspace.init(home, actor="bench")
    if mode == "encrypted":
        kek = WORK / "kek"
        if not kek.exists():
            kek.write_text(os.urandom(32).hex())
            kek.chmod(0o600)
        enable_encryption(ws, KekSource.file(kek), actor="bench")
    return ws


def one(mode: str, op: str, model: Path) -> dict[str, float]:
    """Run one measurement in this process."""
    from mlsecops.registry import Registry, Role, authenticate, create_api_key, create_user

    ws = _workspace(mode, f"{op}-{os.getpid()}")
    try:
        if op in ("read", "load"):
            sha, _ = ws.artifacts.put_file(model)
        if op == "register":
            create_user(ws, "root", Role.ADMIN, actor=None)
            reg = Registry(ws, authenticate(ws, create_api_key(ws, "root", actor=None)))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        if op == "store":
            ws.artifacts.put_file(model)
        elif op == "register":
            info = reg.register("big", model)
            assert info.version == 1
        elif op == "read":
            with ws.artifacts.open(sha) as fh:
                while fh.read(1 << 20):
                    pass
        else:
            dest = ws.home / "loaded.bin"
            ws.artifacts.copy_out(sha, dest)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"seconds": seconds, "rss_mib": peak / 1024, "rss_growth_mib": (peak - before) / 1024}
    finally:
        home = ws.home
        ws.close()
        shutil.rmtree(home, ignore_errors=True)


def _model(mib: int) -> Path:
    path = WORK / f"model-{mib}mib.bin"
    if not path.exists() or path.stat().st_size != mib << 20:
        WORK.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            for _ in range(mib):
                fh.write(os.urandom(1 << 20))
    with path.open("rb") as fh:  # into the page cache, in chunks: a child forked from a process that
        while fh.read(1 << 20):  # held the whole file would inherit its peak RSS
            pass
    return path


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--one", nargs=3, metavar=("MODE", "OP", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], Path(args.one[2]))))
        return
    model = _model(args.mib)
    load_before = os.getloadavg()
    runs: dict[str, dict[str, list[dict[str, float]]]] = {m: {op: [] for op in OPS} for m in MODES}
    for _ in range(args.repeats):
        for op in OPS:
            for mode in MODES:
                out = subprocess.run(
                    [sys.executable, __file__, "--one", mode, op, str(model)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                runs[mode][op].append(json.loads(out.strip().splitlines()[-1]))
    table: dict[str, Any] = {}
    for op in OPS:
        row: dict[str, Any] = {}
        for mode in MODES:
            row[mode] = _summary([r["seconds"] for r in runs[mode][op]])
            row[mode]["rss_mib"] = max(r["rss_mib"] for r in runs[mode][op])
            row[mode]["rss_growth_mib"] = max(r["rss_growth_mib"] for r in runs[mode][op])
            row[mode]["mib_per_s"] = args.mib / row[mode]["median"]
        row["overhead_s"] = row["encrypted"]["median"] - row["plain"]["median"]
        row["ratio"] = row["encrypted"]["median"] / row["plain"]["median"]
        table[op] = row
    doc = {
        "mib": args.mib,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "cryptography": __import__("cryptography").__version__,
        "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "results": table,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "encryption-at-rest.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        f"# Encryption at rest: {args.mib} MiB model blob, plain vs encrypted workspace",
        "",
        f"Command: `nice -n 10 .venv/bin/python benchmarks/store/encryption.py --repeats {args.repeats} "
        f"--mib {args.mib}`; {doc['machine']}, Python {doc['python']}, cryptography {doc['cryptography']}. "
        "Median of the repeats (min-max), each in a fresh process, source in the page cache, SQLite "
        "workspace on the same disk. Load average (1 min) before/after: "
        f"{doc['load_average_1m_before_after'][0]} / {doc['load_average_1m_before_after'][1]} on "
        f"{os.cpu_count()} cores (other jobs ran on the machine: absolute times are noisy).",
        "",
        "| operation | plain s | encrypted s | overhead s | ratio | plain MiB/s | encrypted MiB/s | peak RSS MiB plain / encrypted (growth during the operation) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op, row in table.items():
        p, e = row["plain"], row["encrypted"]
        lines.append(
            f"| {op} | {p['median']:.3f} ({p['min']:.3f}-{p['max']:.3f}) | {e['median']:.3f} "
            f"({e['min']:.3f}-{e['max']:.3f}) | {row['overhead_s']:+.3f} | {row['ratio']:.2f}x | "
            f"{p['mib_per_s']:.0f} | {e['mib_per_s']:.0f} | {p['rss_mib']:.0f} ({p['rss_growth_mib']:+.0f}) / "
            f"{e['rss_mib']:.0f} ({e['rss_growth_mib']:+.0f}) |"
        )
    (RESULTS / "encryption-at-rest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
