"""Signing benchmark: sign and verify a 2 GiB model directory (10 files of 200 MiB), side by side in
one run, with mlsecops (library and CLI), model-signing 1.1.1 (library and CLI), a hashlib floor
(SHA-256 over the same files in 2 processes) and BLAKE3 through its own library.

    benchmarks/signing/setup_venv.sh                # once: model-signing and blake3 in benchmarks/.venv-signing
    .venv/bin/python benchmarks/signing/run.py [--repeats 3] [--files 10] [--mib 200]

Every measurement runs in a fresh process on a warm page cache (the files are read once first; this
machine has far more RAM than 2 GiB). Library timings are taken inside the process around the call
(imports excluded); CLI timings are wall time of the whole command, start-up included. Peak memory is
the process's maximum RSS. The median of ``--repeats`` runs is reported, with min and max. Writes
``benchmarks/results/signing.json`` and ``benchmarks/results/signing.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / ".work" / "signing"
MODEL = WORK / "model"
OURS = ROOT / ".venv" / "bin"
PEER = ROOT / "benchmarks" / ".venv-signing" / "bin"
RESULTS = ROOT / "benchmarks" / "results"

_REPORT = "import json, resource, sys; print(json.dumps({'seconds': t, 'rss_mib': max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024}))"

SNIPPETS: dict[str, tuple[Path, str]] = {
    "hashlib floor (SHA-256, 2 processes)": (
        OURS,
        """
import hashlib, os, sys, time
from multiprocessing import Pool
def h(p):
    d = hashlib.sha256()
    with open(p, 'rb', buffering=0) as f:
        while b := f.read(1 << 20):
            d.update(b)
    return d.hexdigest()
if __name__ == '__main__':
    files = sorted(os.path.join(sys.argv[1], f) for f in os.listdir(sys.argv[1]))
    with Pool(2) as pool:
        t0 = time.perf_counter(); pool.map(h, files, chunksize=1); t = time.perf_counter() - t0
""",
    ),
    "blake3 library (update_mmap, all threads)": (
        PEER,
        """
import os, sys, time, blake3
files = sorted(os.path.join(sys.argv[1], f) for f in os.listdir(sys.argv[1]))
t0 = time.perf_counter()
for p in files:
    blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(p).hexdigest()
t = time.perf_counter() - t0
""",
    ),
    "mlsecops library sign SHA-256": (
        OURS,
        """
import sys, time
from pathlib import Path
from mlsecops.supplychain import signing
t0 = time.perf_counter(); k = signing.load_private_key(Path(sys.argv[2])); signing.sign_model(Path(sys.argv[1]), k, signature=Path(sys.argv[3])); t = time.perf_counter() - t0
""",
    ),
    "mlsecops library verify SHA-256": (
        OURS,
        """
import sys, time
from pathlib import Path
from mlsecops.supplychain import signing
t0 = time.perf_counter(); k = signing.load_public_key(Path(sys.argv[2] + '.pub')); signing.verify_model(Path(sys.argv[1]), k, signature=Path(sys.argv[3])); t = time.perf_counter() - t0
""",
    ),
    "mlsecops library sign BLAKE3": (
        OURS,
        """
import sys, time
from pathlib import Path
from mlsecops.supplychain import signing
t0 = time.perf_counter(); k = signing.load_private_key(Path(sys.argv[2])); signing.sign_model(Path(sys.argv[1]), k, signature=Path(sys.argv[3] + '.b3'), algorithm=signing.HashAlgorithm.BLAKE3); t = time.perf_counter() - t0
""",
    ),
    "mlsecops library verify BLAKE3": (
        OURS,
        """
import sys, time
from pathlib import Path
from mlsecops.supplychain import signing
t0 = time.perf_counter(); k = signing.load_public_key(Path(sys.argv[2] + '.pub')); signing.verify_model(Path(sys.argv[1]), k, signature=Path(sys.argv[3] + '.b3')); t = time.perf_counter() - t0
""",
    ),
    "model-signing library sign SHA-256": (
        PEER,
        """
import sys, time, model_signing
t0 = time.perf_counter()
model_signing.signing.Config().use_elliptic_key_signer(private_key=sys.argv[2]).sign(sys.argv[1], sys.argv[3] + '.ms')
t = time.perf_counter() - t0
""",
    ),
    "model-signing library verify SHA-256": (
        PEER,
        """
import sys, time, model_signing
t0 = time.perf_counter()
model_signing.verifying.Config().use_elliptic_key_verifier(public_key=sys.argv[2] + '.pub').verify(sys.argv[1], sys.argv[3] + '.ms')
t = time.perf_counter() - t0
""",
    ),
    "model-signing library sign BLAKE3": (
        PEER,
        """
import sys, time, model_signing
t0 = time.perf_counter()
hc = model_signing.hashing.Config().use_file_serialization(hashing_algorithm='blake3')
model_signing.signing.Config().use_elliptic_key_signer(private_key=sys.argv[2]).set_hashing_config(hc).sign(sys.argv[1], sys.argv[3] + '.msb3')
t = time.perf_counter() - t0
""",
    ),
    "model-signing library verify BLAKE3": (
        PEER,
        """
import sys, time, model_signing
t0 = time.perf_counter()
model_signing.verifying.Config().use_elliptic_key_verifier(public_key=sys.argv[2] + '.pub').verify(sys.argv[1], sys.argv[3] + '.msb3')
t = time.perf_counter() - t0
""",
    ),
}


def _cli_commands(key: Path, sig: Path) -> dict[str, list[str]]:
    return {
        "mlsecops CLI sign SHA-256": [
            str(OURS / "mlsecops"),
            "sign",
            str(MODEL),
            "--key",
            str(key),
            "--signature",
            str(sig) + ".cli",
        ],
        "mlsecops CLI verify SHA-256": [
            str(OURS / "mlsecops"),
            "verify",
            str(MODEL),
            "--key",
            f"{key}.pub",
            "--signature",
            str(sig) + ".cli",
        ],
        "model-signing CLI sign SHA-256": [
            str(PEER / "model_signing"),
            "sign",
            "key",
            "--private_key",
            str(key),
            "--signature",
            str(sig) + ".mscli",
            str(MODEL),
        ],
        "model-signing CLI verify SHA-256": [
            str(PEER / "model_signing"),
            "verify",
            "key",
            "--public_key",
            f"{key}.pub",
            "--signature",
            str(sig) + ".mscli",
            str(MODEL),
        ],
    }


def byte_compile_ours() -> None:
    """Byte-compile our sources, as pip does when it installs a wheel: the peers' venv is compiled, and an
    editable checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module per start."""
    subprocess.run(
        [str(OURS / "python"), "-m", "compileall", "-q", str(ROOT / "src" / "mlsecops")], check=True
    )


def make_model(files: int, mib: int) -> None:
    MODEL.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    for i in range(files):
        path = MODEL / f"shard-{i:02d}.bin"
        if path.exists() and path.stat().st_size == mib << 20:
            continue
        with path.open("wb") as fh:
            for j in range(mib):
                fh.write(block[j % 7 :] + block[: j % 7])  # distinct blocks, cheap to make
    for p in MODEL.iterdir():
        with p.open("rb", buffering=0) as fh:  # warm the page cache
            while fh.read(8 << 20):
                pass


def run_snippet(name: str, key: Path, sig: Path) -> dict[str, Any]:
    venv, code = SNIPPETS[name]
    env = {**os.environ, "MLSECOPS_HOME": str(WORK / "no-workspace")}
    done = subprocess.run(
        [str(venv / "python"), "-c", code + "\n" + _REPORT, str(MODEL), str(key), str(sig)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-800:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_cli(cmd: list[str]) -> dict[str, Any]:
    """Wall time of the whole command; peak RSS from GNU time (``/usr/bin/time -f %M``, in KiB)."""
    env = {**os.environ, "MLSECOPS_HOME": str(WORK / "no-workspace")}
    rss_file = WORK / "rss.txt"
    wrapper = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] if Path("/usr/bin/time").exists() else []
    t0 = time.perf_counter()
    done = subprocess.run([*wrapper, *cmd], capture_output=True, text=True, timeout=600, env=env)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {done.stderr[-800:]}{done.stdout[-400:]}")
    rss = float(rss_file.read_text().strip().splitlines()[-1]) / 1024 if wrapper else None
    return {"seconds": seconds, "rss_mib": rss}


def cli_startup() -> dict[str, float]:
    """Median wall time of ``--help`` of both CLIs: the start-up cost inside every CLI row."""
    out = {}
    for name, cmd in (
        ("mlsecops", [str(OURS / "mlsecops"), "sign", "--help"]),
        ("model-signing", [str(PEER / "model_signing"), "sign", "key", "--help"]),
    ):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, timeout=120, check=True)
            times.append(time.perf_counter() - t0)
        out[name] = round(statistics.median(times), 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--mib", type=int, default=200)
    args = parser.parse_args()
    if not (PEER / "model_signing").exists():
        print("run benchmarks/signing/setup_venv.sh first", file=sys.stderr)
        return 2
    make_model(args.files, args.mib)
    byte_compile_ours()
    key = WORK / "bench.key"
    if not key.exists():
        sys.path.insert(0, str(ROOT / "src"))
        from mlsecops.supplychain import signing

        signing.create_keypair(key)
    sig = WORK / "model.sig"
    order = [
        "hashlib floor (SHA-256, 2 processes)",
        "mlsecops library sign SHA-256",
        "mlsecops library verify SHA-256",
        "model-signing library sign SHA-256",
        "model-signing library verify SHA-256",
        "blake3 library (update_mmap, all threads)",
        "mlsecops library sign BLAKE3",
        "mlsecops library verify BLAKE3",
        "model-signing library sign BLAKE3",
        "model-signing library verify BLAKE3",
    ]
    clis = _cli_commands(key, sig)
    samples: dict[str, list[dict[str, Any]]] = {n: [] for n in [*order, *clis]}
    for r in range(args.repeats):  # interleaved, so load from other processes spreads over every tool
        for name in order:
            samples[name].append(run_snippet(name, key, sig))
        for name, cmd in clis.items():
            samples[name].append(run_cli(cmd))
        print(f"round {r + 1}/{args.repeats} done", file=sys.stderr)
    startup = cli_startup()
    floor = statistics.median(s["seconds"] for s in samples[order[0]])
    rows = []
    for name, runs in samples.items():
        secs = [s["seconds"] for s in runs]
        rss = [s["rss_mib"] for s in runs if s.get("rss_mib")]
        rows.append(
            {
                "tool": name,
                "median_s": round(statistics.median(secs), 3),
                "min_s": round(min(secs), 3),
                "max_s": round(max(secs), 3),
                "vs_floor": round(statistics.median(secs) / floor, 2),
                "peak_rss_mib": round(max(rss), 1) if rss else None,
            }
        )
    size = args.files * args.mib
    meta = {
        "files": args.files,
        "mib_per_file": args.mib,
        "total_mib": size,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_avg_at_end": os.getloadavg(),
        "cli_startup_s": startup,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "signing.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    lines = [
        "# Signing benchmark",
        "",
        f"Sign and verify a {size} MiB model directory ({args.files} files of {args.mib} MiB), warm page cache, "
        f"{meta['cpus']} CPUs, Python {meta['python']}, median of {args.repeats} interleaved runs "
        f"(load average at the end: {', '.join(f'{x:.2f}' for x in meta['load_avg_at_end'])}; the machine is shared).",
        "Library rows time the call inside a fresh process (imports excluded, key loading included for both "
        "tools: model-signing's Config loads the key inside its call); CLI rows are whole-command wall time. "
        "`vs floor` divides by the hashlib floor (SHA-256 in 2 processes).",
        "",
        "| tool | median s | min s | max s | vs floor | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['tool']} | {r['median_s']} | {r['min_s']} | {r['max_s']} | {r['vs_floor']} | {r['peak_rss_mib'] or '-'} |"
        )
    lines += [
        "",
        f"CLI start-up (`--help`, median of 5): mlsecops {startup['mlsecops']} s, model-signing "
        f"{startup['model-signing']} s; every CLI row includes it.",
        "",
        "Reproduce: `benchmarks/signing/setup_venv.sh && .venv/bin/python benchmarks/signing/run.py`",
        "",
    ]
    (RESULTS / "signing.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
