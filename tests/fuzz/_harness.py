"""Run one parser family's fuzzer: seeds built at run time plus the family's regression files.

    python tests/fuzz/fuzz_pickle.py --seconds 20 [--runs N] [--seed S] [--crashes DIR]

libFuzzer (through atheris) mutates the corpus with coverage feedback from the scanner's modules only.
A contract violation (see ``_contract``) is written to ``--crashes`` as ``crash-<sha1>`` and the run goes
on, so one run counts every distinct crash; a hang or an out-of-memory input ends the run and libFuzzer
writes it there as ``timeout-*`` / ``oom-*``. The last line is a JSON summary (executions, seconds,
crashes) that ``test_fuzz`` and ``benchmarks/fuzz/run.py`` read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["REGRESSIONS", "main"]

MAX_LEN = 64 << 10
RSS_LIMIT_MB = 1536
TIMEOUT_SECONDS = 20


def main(family: str, argv: list[str] | None = None) -> None:
    """Fuzz ``family`` for ``--seconds`` (or ``--runs`` inputs); exit 0 when no crash was found, else 1.

    With ``--seed`` and ``--runs`` a run is the same exploration on every machine (a time bound explores
    further on a faster one, so a run that passed here could find a crash in CI).
    """
    import atheris

    ap = argparse.ArgumentParser(description=f"fuzz the scanner's {family} parsers")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument(
        "--crashes", type=Path, default=None, help="where crashing inputs go (default: a temp dir)"
    )
    ap.add_argument("--seed", type=int, default=0, help="libFuzzer's random seed (0: from the clock)")
    ap.add_argument(
        "--runs", type=int, default=0, help="stop after this many inputs (0: run for --seconds only)"
    )
    args = ap.parse_args(argv)
    crashes = args.crashes or Path(tempfile.mkdtemp(prefix=f"fuzz-{family}-crashes-"))
    crashes.mkdir(parents=True, exist_ok=True)

    from tests.fuzz._seeds import seeds

    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{family}-corpus-"))
    for name, data in seeds(family).items():
        (corpus / name).write_bytes(data)
    regressions = REGRESSIONS / family
    if regressions.is_dir():
        for f in regressions.iterdir():
            if f.is_file():
                (corpus / f"regression-{f.name}").write_bytes(f.read_bytes())

    with atheris.instrument_imports(include=["mlsecops.supplychain.scanner"]):
        from tests.fuzz._contract import ContractViolation, check_bytes

    state = {"runs": 0, "crashes": 0}
    seen: set[str] = set()
    t0 = time.monotonic()

    def one_input(data: bytes) -> None:
        state["runs"] += 1
        try:
            check_bytes(data)
        except Exception as err:
            if isinstance(err, ContractViolation):  # the swallowed exception's type and message head
                key = str(err)[:60]
            else:
                where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
                key = f"{type(err).__name__}:{where.filename}:{where.lineno}" if where else type(err).__name__
            sha = hashlib.sha1(data).hexdigest()
            if key not in seen:  # one file per distinct crash site keeps the directory readable
                seen.add(key)
                state["crashes"] += 1
                (crashes / f"crash-{sha}").write_bytes(data)
                print(f"CRASH {family} {key} crash-{sha}: {err!s:.200}", file=sys.stderr, flush=True)
        # our clock, not libFuzzer's: it exits past Python's atexit
        done = args.runs and state["runs"] >= args.runs
        if done or time.monotonic() - t0 > args.seconds:
            _summary(family, state, t0, crashes)
            os._exit(1 if state["crashes"] else 0)

    lib_args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={args.seconds + 60}",  # a backstop only
        f"-max_len={MAX_LEN}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-timeout={TIMEOUT_SECONDS}",
        f"-artifact_prefix={crashes}/",
        f"-seed={args.seed}",
        "-print_final_stats=1",
    ]
    atheris.Setup(lib_args, one_input)
    atheris.Fuzz()


def _summary(family: str, state: dict[str, int], t0: float, crashes: Path) -> None:
    found = sorted(p.name for p in crashes.iterdir()) if crashes.is_dir() else []
    seconds = time.monotonic() - t0
    out = {
        "family": family,
        "executions": state["runs"],
        "seconds": round(seconds, 2),
        "exec_per_s": round(state["runs"] / seconds, 1) if seconds else 0.0,
        "crashes": len(found),
        "crash_files": found,
        "crash_dir": str(crashes),
    }
    print("FUZZ-SUMMARY " + json.dumps(out), flush=True)


SUMMARY = re.compile(r"^FUZZ-SUMMARY (\{.*\})$", re.M)
