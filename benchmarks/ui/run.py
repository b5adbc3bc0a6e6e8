"""Page load of the dashboard (``mlsecops ui``) on the workspace ``generate.py`` built.

    nice -n 10 .venv/bin/python benchmarks/ui/generate.py --home /tmp/mlsecops-ui-bench
    nice -n 10 .venv/bin/python benchmarks/ui/run.py --home /tmp/mlsecops-ui-bench

First the library calls the pages stand on (``mlsecops.posture``: ``all_postures``, ``model_posture``,
``trends``) are timed in this process. Then ``mlsecops ui`` is started as a subprocess on a free
loopback port, the admin logs in through the form (CSRF token, session cookie), and each page is
fetched ``--repeats`` times after one warm-up; a page's time is from sending the request to having
read the whole body (server time plus transfer on loopback). The server's CPU time per request (all
its threads, from /proc) is recorded too: on a shared machine it says what a page costs when wall
times are inflated by other jobs. The first fetch of the models page right after start-up is
reported apart (it computes every posture before the cache is warm). Goal: p95 under 300 ms for
every page. Results go to ``benchmarks/results/ui.md`` and ``ui.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from mlsecops.posture import all_postures, model_posture, trends
from mlsecops.store import Workspace

ROOT = Path(__file__).resolve().parents[2]
GOAL_MS = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def _summary(times_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(times_ms), 1),
        "p95_ms": round(_pct(times_ms, 0.95), 1),
        "max_ms": round(max(times_ms), 1),
        "n": len(times_ms),
    }


def _library(home: Path, repeats: int) -> dict[str, Any]:
    ws = Workspace.open(home, f"sqlite:///{home / 'mlsecops.db'}")
    try:
        out: dict[str, Any] = {}
        found = all_postures(ws)
        busiest = max(found, key=lambda p: (len(p.aliases), p.version))
        calls = {
            "all_postures": lambda: all_postures(ws),
            "model_posture": lambda: model_posture(ws, busiest.model, busiest.version),
            "trends (1 h buckets)": lambda: trends(ws, busiest.model, bucket_s=3600),
            "trends (1 day buckets)": lambda: trends(ws, busiest.model, bucket_s=86400),
        }
        for name, call in calls.items():
            call()
            times, cpu = [], []
            for _ in range(repeats):
                t, c = time.perf_counter(), time.process_time()
                call()
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
            out[name] = {**_summary(times), "cpu_p50_ms": round(statistics.median(cpu), 1)}
        out["versions"] = len(found)
        out["grades"] = {
            g: sum(1 for p in found if p.grade == g) for g in ("good", "fair", "poor", "unknown")
        }
        return out
    finally:
        ws.close()


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used, in ms (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def _login(client: httpx.Client, key: str) -> None:
    form = client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if match is None:
        raise SystemExit("the log-in form has no CSRF field; did the dashboard change?")
    answer = client.post("/login", data={"csrf": match.group(1), "credential": key, "next": "/models"})
    if answer.status_code not in (200, 303) or "mlsecops_session" not in client.cookies:
        raise SystemExit(f"log-in failed: HTTP {answer.status_code}")


def _pages(client: httpx.Client) -> dict[str, str]:
    models = client.get("/api/models").json()
    rows = models if isinstance(models, list) else models.get("models", [])
    chosen = max(rows, key=lambda m: len(m.get("versions", []))) if rows else {"name": ""}
    name = chosen["name"]
    versions = [v["version"] for v in chosen.get("versions", [])] or [1]
    alerts = client.get("/api/alerts").json()
    alert_rows = alerts if isinstance(alerts, list) else alerts.get("alerts", [])
    incidents = client.get("/api/incidents").json()
    incident_rows = incidents if isinstance(incidents, list) else incidents.get("incidents", [])
    runs = client.get("/api/runs").json()
    run_rows = runs if isinstance(runs, list) else runs.get("runs", [])
    pages = {
        "models": "/models",
        "model": f"/models/{name}",
        "version posture": f"/models/{name}/{versions[-1]}",
        "lineage": f"/models/{name}/{versions[-1]}/lineage",
        "trends (day)": f"/trends?model={name}",
        "trends (hour)": f"/trends?model={name}&bucket=hour",
        "runtime": "/runtime",
        "audit": "/audit",
        "audit filtered": "/audit?action=registry.promote",
        "runs": "/runs",
        "api models": "/api/models",
    }
    if alert_rows:
        pages["alert"] = f"/alerts/{alert_rows[0]['id']}"
    if incident_rows:
        pages["incident"] = f"/incidents/{incident_rows[0]['id']}"
    if run_rows:
        pages["run"] = f"/runs/{run_rows[0]['id']}"
    return pages


def _dashboard(home: Path, repeats: int) -> dict[str, Any]:
    key = (home / "keys" / "bench-admin.key").read_text().strip()
    port = _free_port()
    env = {
        **os.environ,
        "MLSECOPS_HOME": str(home),
        "MLSECOPS_DATABASE_URL": f"sqlite:///{home / 'mlsecops.db'}",
    }
    cmd = [sys.executable, "-m", "mlsecops.cli", "ui", "--host", "127.0.0.1", "--port", str(port)]
    log = (home.parent / "ui-server.log").open("w")
    started = time.perf_counter()
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"mlsecops ui did not start; see {home.parent / 'ui-server.log'}"
                    ) from None
                time.sleep(0.05)
        # The port opens once the app's start-up (which fills the posture and overview caches) is done.
        out: dict[str, Any] = {"pages": {}, "startup_s": round(time.perf_counter() - started, 2)}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, follow_redirects=False) as client:
            _login(client, key)
            t = time.perf_counter()
            first = client.get("/models")
            out["first_models_load_ms"] = round((time.perf_counter() - t) * 1000, 1)
            out["first_models_status"] = first.status_code
            for label, path in _pages(client).items():
                t = time.perf_counter()
                answer = client.get(path)  # the page's first load since start
                _ = answer.content
                first_ms = round((time.perf_counter() - t) * 1000, 1)
                times = []
                cpu0 = _cpu_ms(server.pid)
                for _ in range(repeats):
                    t = time.perf_counter()
                    answer = client.get(path)
                    _ = answer.content
                    times.append((time.perf_counter() - t) * 1000)
                out["pages"][label] = {
                    "path": path,
                    "status": answer.status_code,
                    "bytes": len(answer.content),
                    "first_ms": first_ms,
                    **_summary(times),
                    "server_cpu_ms": round((_cpu_ms(server.pid) - cpu0) / repeats, 1),
                }
                print(f"{label:18} {path[:48]:48} {out['pages'][label]}", flush=True)
        return out
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _markdown(result: dict[str, Any]) -> str:
    gen, lib, dash = result["workspace"], result["library"], result.get("dashboard")
    lines = [
        "# Dashboard page load: 200 model versions, 100,000 audit events",
        "",
        f"Command: `{result['command']}` after `{result['generate_command']}`; "
        f"{result['machine']}. Load average (1 min) before/after: {result['load_before']} / "
        f"{result['load_after']} on {os.cpu_count()} cores (other jobs shared the machine: absolute times are noisy).",
        "",
        f"Workspace ({gen.get('seconds', '?')} s to build): {gen.get('models')} models, {gen.get('versions')} versions "
        f"({gen.get('signed')} signed by the trusted key, {gen.get('untrusted')} by an untrusted one, "
        f"{gen.get('unsigned')} unsigned), {gen.get('runs')} pipeline runs ({gen.get('failed_runs')} failed their gate), "
        f"{gen.get('gated')} gates attached, {gen.get('approved')} approvals, {gen.get('promotions')} promotions, "
        f"{gen.get('rollbacks')} rollbacks, {gen.get('decisions')} logged decisions, {gen.get('alerts')} alerts, "
        f"{gen.get('incidents')} incidents, {gen.get('audit_events')} audit events (chain verified: "
        f"{gen.get('audit_verified')}, in {gen.get('audit_verify_s')} s). What is real and what is synthetic: "
        "`benchmarks/ui/generate.py`'s docstring.",
        "",
        "## Library calls (in process)",
        "",
        "| call | p50 ms | p95 ms | max ms | CPU p50 ms | n |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in lib.items():
        if isinstance(s, dict) and "p50_ms" in s:
            lines.append(
                f"| {name} | {s['p50_ms']} | {s['p95_ms']} | {s['max_ms']} | {s['cpu_p50_ms']} | {s['n']} |"
            )
    lines += ["", f"Grades of the {lib['versions']} versions: {lib['grades']}.", ""]
    if dash is not None:
        lines += [
            "## Pages of `mlsecops ui` (logged-in session, loopback)",
            "",
            f"Start-up until the port opens (the caches are filled before it listens): "
            f"{dash.get('startup_s', '?')} s. First load of /models after start-up (the first request "
            f"after logging in): {dash['first_models_load_ms']} ms. `first ms` below is each page's "
            "first load since start.",
            "",
            "| page | path | status | KiB | first ms | p50 ms | p95 ms | max ms | server CPU ms/request | "
            "under 300 ms (first and p95) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for label, s in dash["pages"].items():
            ok = "yes" if max(s["p95_ms"], s.get("first_ms", 0)) < GOAL_MS else "**no**"
            lines.append(
                f"| {label} | `{s['path']}` | {s['status']} | {s['bytes'] / 1024:.1f} | "
                f"{s.get('first_ms', '')} | {s['p50_ms']} | "
                f"{s['p95_ms']} | {s['max_ms']} | {s['server_cpu_ms']} | {ok} |"
            )
        pages = dash["pages"]
        slow = [label for label, s in pages.items() if max(s["p95_ms"], s.get("first_ms", 0)) >= GOAL_MS]
        if dash["first_models_load_ms"] >= GOAL_MS:
            slow.insert(0, "the first /models load")
        cpu_max = max(s["server_cpu_ms"] for s in pages.values())
        lines += [
            "",
            "Reading the results:",
            "",
            f"- Wall times here are those of a machine shared with other jobs (load average "
            f"{result['load_before']}-{result['load_after']} on {os.cpu_count()} cores): a request waits for a "
            "core most of its time. The server's own CPU time per request is the stable figure: at most "
            f"{cpu_max} ms for every page here.",
            "- Goal (first load and p95 < 300 ms wall): "
            + (
                "met by every page."
                if not slow
                else f"not met under this load by {', '.join(slow)}; met by the others. "
                "Repeat loads cost far less CPU than the goal, so a p95 miss is waiting time on the shared "
                "cores; a first-load miss is also work done once (the log-in's `ui.login` event moves the "
                "audit head, so the first pages after it are served the start-up postures while one "
                "background thread refreshes them, and the trend charts are drawn). Whether they meet the "
                "goal on an unshared machine this run cannot show."
            ),
            "- First loads: start-up computes every posture and the models overview before the port "
            "opens, so the first /models after start is served from a warm cache. The trend charts are "
            "cached by audit head position and drawn on a page's first request; the log-in itself "
            "writes a `ui.login` event, so drawing them at start-up would not help the first visitor "
            "(tried: start-up doubled, first trends load unchanged). Their first load is the posture "
            "trends computation plus the SVG drawing of that model (see the `trends` library rows).",
            f"- The library: `all_postures` over {lib['versions']} versions costs "
            f"{lib['all_postures']['cpu_p50_ms']} ms of CPU (p50; wall p50 {lib['all_postures']['p50_ms']} ms) "
            "in a fixed number of queries (a profile puts about half of it in SQLite fetching the stage "
            "bodies and the rest in building the parts); the gap between wall and CPU time is waiting for "
            "a core on the shared machine, not I/O. The dashboard computes it at start-up and then caches it "
            "until the audit head moves, which is why its pages cost less than the call.",
            "- The audit top-up appends in transactions of 2,000 events; `store.audit.append` checks this "
            "host's mark once per transaction (an append that extends the session's own previous event "
            "reuses that check)"
            + (
                f": {gen['audit_top_up']['events']} events in {gen['audit_top_up']['seconds']} s of "
                f"{gen['seconds']} s."
                if "audit_top_up" in gen
                else "."
            ),
        ]
    lines.append("")
    return "\n".join(lines)


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, default=Path("/tmp/mlsecops-ui-bench"), help="generate.py's --home"
    )
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--library-only", action="store_true", help="Time the posture calls only.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ui")
    parser.add_argument("--markdown-only", action="store_true", help="Re-write the .md from the saved .json.")
    args = parser.parse_args()
    if args.markdown_only:
        saved = json.loads(args.out.with_suffix(".json").read_text())
        args.out.with_suffix(".md").write_text(_markdown(saved))
        return
    ws_home = args.home / ".mlsecops"
    if not (ws_home / "mlsecops.db").exists():
        raise SystemExit(
            f"no workspace under {args.home}; run benchmarks/ui/generate.py --home {args.home} first"
        )
    result: dict[str, Any] = {
        "command": f"nice -n 10 .venv/bin/python benchmarks/ui/run.py --home {args.home}",
        "generate_command": f"nice -n 10 .venv/bin/python benchmarks/ui/generate.py --home {args.home}",
        "machine": f"{platform.machine()}, Python {platform.python_version()}, SQLite workspace",
        "load_before": _load(),
        "workspace": json.loads((args.home / "bench.json").read_text()),
        "goal_ms": GOAL_MS,
    }
    result["library"] = _library(ws_home, args.repeats)
    print(json.dumps(result["library"], indent=1), flush=True)
    if not args.library_only:
        result["dashboard"] = _dashboard(ws_home, args.repeats)
    result["load_after"] = _load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(_markdown(result))
    print(f"written {args.out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
