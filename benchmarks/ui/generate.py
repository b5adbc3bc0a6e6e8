"""Build a workspace the size the dashboard must stay fast on: 200 model versions, 100,000 audit events.

    nice -n 10 .venv/bin/python benchmarks/ui/generate.py --home /tmp/mlsecops-ui-bench

What goes through the real code paths: every model is a real scikit-learn logistic regression (digits,
breast cancer or wine, its own seed and regularisation) saved with joblib and signed with the
model-signing API (most with the trusted key, some with an untrusted key, some not at all); every
version is registered by ``Registry.register`` (which scans the stored bytes); each pipeline run's
``artifact.scan`` and ``sign.verify`` stages are the real checks run over the model file, its gate is
the real policy (``pipeline.policy.evaluate``), and the run is recorded as the runner records it
(runs, stage reports with their evaluated-bytes records, combined report, ``pipeline.run`` event, one
transaction); gates are attached, versions approved, promoted, rolled back and aliased through the
registry API; alerts go through ``ResponseEngine.handle`` (incidents, blocks and quarantines by the
example guard policy's playbooks) and ``AlertStore``; decisions through ``DecisionLog``; and the audit
trail is topped up to the target with ``store.audit.append`` in batches of one transaction each.

What is synthetic: the robustness, certification, privacy, fairness and data-check stage reports of
the runs carry plausible metrics drawn from a seeded generator (with a real SVG chart each, so report
bodies have their usual size), not measurements of these models; the extra audit events are
``monitor.alert`` repeats and throttle/deny events marked ``generated_by``; decision times are
spread over the last seven days.

Writes ``<home>/bench.json`` (what was made, timings) and keeps the admin's and a viewer's API keys in
``<home>/.mlsecops/keys/bench-*.key`` (0600) for ``benchmarks/ui/run.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import MlsecopsError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.monitor.alerts import AlertStore
from mlsecops.monitor.interface import Alert
from mlsecops.pipeline import Stage
from mlsecops.pipeline.evaluated import read_paths, stage_record
from mlsecops.pipeline.policy import GateResult, evaluate, parse_rules
from mlsecops.pipeline.runner import stored_report
from mlsecops.registry import Registry, Role, authenticate, create_api_key, create_user
from mlsecops.report import line_chart
from mlsecops.runtime.decisions import DecisionLog
from mlsecops.runtime.policy import LoggingPolicy, load_policy
from mlsecops.runtime.response import ResponseEngine
from mlsecops.store import PipelineRun, Workspace, audit
from mlsecops.store.models import AuditEvent
from mlsecops.supplychain import signing

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ("digits", "breast_cancer", "wine")
REJECTIONS = ("rate_limit", "invalid_input", "budget", "blocked")


def _log(msg: str, t0: float) -> None:
    print(f"[{time.monotonic() - t0:7.1f}s] {msg}", flush=True)


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
    }
    x, y = loader[name](return_X_y=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y)


def _train(name: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _data(name)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))[: int(len(x) * 0.7)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=float(rng.uniform(0.05, 2.0)), max_iter=200)
        ).fit(x[idx], y[idx])


def _synthetic_stage(check: str, stage: str, rng: np.random.Generator, *, weak: bool) -> Report:
    """A stage report with plausible metrics for a check we do not run here (see the module docstring)."""
    m: dict[str, float] = {}
    findings: list[Finding] = []
    fig = None
    if check == "assess.robustness":
        clean = float(rng.uniform(0.9, 0.99))
        eps = (0.05, 0.1)
        robust = [
            clean * float(rng.uniform(0.3, 0.6) if weak else rng.uniform(0.65, 0.9)) ** (i + 1)
            for i in range(2)
        ]
        m = {
            "clean_accuracy": clean,
            **{f"robust_accuracy@pgd_linf_{e}": r for e, r in zip(eps, robust, strict=True)},
        }
        m.update({f"attack_success@pgd_linf_{e}": 1 - r / clean for e, r in zip(eps, robust, strict=True)})
        fig = line_chart(
            "robust accuracy by budget", {"pgd": [(0.0, clean), *zip(eps, robust, strict=True)]}, xlabel="eps"
        )
        if weak:
            findings.append(
                Finding(
                    check=check,
                    severity=Severity.HIGH,
                    title=f"robust accuracy falls to {robust[0]:.2f} at eps 0.05",
                    remediation="adversarial training",
                )
            )
    elif check == "assess.certify":
        m = {
            "certified_accuracy@0.25": float(rng.uniform(0.3, 0.8)),
            "abstain_rate": float(rng.uniform(0.02, 0.2)),
        }
    elif check == "assess.privacy":
        auc = float(rng.uniform(0.55, 0.75) if weak else rng.uniform(0.5, 0.56))
        m = {"membership_auc": auc, "membership_advantage": 2 * (auc - 0.5)}
        if weak:
            findings.append(
                Finding(
                    check=check,
                    severity=Severity.HIGH,
                    title=f"membership inference AUC {auc:.2f}",
                    remediation="DP training",
                )
            )
    elif check == "assess.fairness":
        dpd = float(rng.uniform(0.12, 0.3) if weak else rng.uniform(0.0, 0.08))
        m = {"demographic_parity_difference": dpd, "equalized_odds_difference": dpd * 0.8, "accuracy": 0.9}
        if weak:
            findings.append(
                Finding(
                    check=check, severity=Severity.MEDIUM, title=f"demographic parity difference {dpd:.2f}"
                )
            )
    elif check == "data.check":
        m = {
            "rows": 1000.0,
            "violations": float(rng.integers(0, 3)),
            "drifted_columns": float(weak),
            "duplicate_rows": 0.0,
        }
    return Report(
        subject=stage,
        kind=check,
        findings=tuple(findings),
        metrics=m,
        verdict="fail" if weak else "pass",
        figures=(fig,) if fig is not None else (),
    )


RULES = [
    {"stage": "scan", "max_severity": "low"},
    {"stage": "verify", "max_severity": "info"},
    {"stage": "robust", "metric": "robust_accuracy@pgd_linf_0.05 >= 0.6"},
    {"stage": "privacy", "metric": "membership_auc <= 0.6"},
    {"stage": "fairness", "metric": "demographic_parity_difference <= 0.1"},
]


def _record_run(
    ws: Workspace, model: Path, pub: Path, rng: np.random.Generator, *, weak: bool
) -> tuple[int, bool]:
    """Run the real scan and signature checks over ``model``, add the synthetic stages, judge the
    real policy and record it all as ``pipeline.runner`` does; return (run id, passed)."""
    stages: list[tuple[str, str, Report, dict[str, Any] | None]] = []
    for name, check, options in (("scan", "artifact.scan", {}), ("verify", "sign.verify", {"key": str(pub)})):
        spec = get_check(check)
        stage = Stage(name=name, check=spec, paths=(model,), options=options)
        before = read_paths(stage)
        try:
            report = spec.create().run(Target(paths=[model], options=options, seed=0))
        except MlsecopsError as err:
            report = Report(
                subject=name,
                kind=check,
                findings=(
                    Finding(
                        check="pipeline.stage_error", severity=Severity.CRITICAL, title=err.diagnostics()
                    ),
                ),
                verdict="error",
            )
        stages.append((name, check, report, stage_record(stage, before, judged=True)))
    for name, check in (
        ("data", "data.check"),
        ("robust", "assess.robustness"),
        ("certify", "assess.certify"),
        ("privacy", "assess.privacy"),
        ("fairness", "assess.fairness"),
    ):
        if rng.random() < 0.85:
            stages.append(
                (name, check, _synthetic_stage(check, name, rng, weak=weak and rng.random() < 0.5), None)
            )
    names = {n: get_check(c) for n, c, _, _ in stages}
    rules = parse_rules([r for r in RULES if r["stage"] in names], names)
    gate: GateResult = evaluate(rules, {n: r for n, _, r, _ in stages}, {})
    started = utcnow()
    combined = Report(
        subject="bench-release",
        kind="pipeline",
        started=started,
        findings=tuple(f for _, _, r, _ in stages for f in r.findings),
        metrics={f"{n}/{k}": v for n, _, r, _ in stages for k, v in r.metrics.items()},
        verdict="pass" if gate.passed else "fail",
        data={"pipeline": "bench-release.yaml", "gate": gate.to_json()},
    )
    with ws.session() as s:
        run = PipelineRun(
            pipeline="bench-release",
            pipeline_sha256="b" * 64,
            started=started.isoformat(),
            finished=utcnow().isoformat(),
            actor="ci",
            passed=gate.passed,
            gate=json.dumps(gate.to_json()),
        )
        s.add(run)
        s.flush()
        for stage, report, record in [(n, r, rec) for n, _, r, rec in stages] + [(None, combined, None)]:
            s.add(stored_report(run.id, stage, report, record))
        audit.append(
            s,
            actor="ci",
            action="pipeline.run",
            subject="bench-release",
            details={"run_id": run.id, "passed": gate.passed, "stages": [n for n, _, _, _ in stages]},
        )
        return run.id, gate.passed


def generate(
    home: Path, *, versions: int, models: int, events: int, decisions: int, seed: int
) -> dict[str, Any]:
    t0 = time.monotonic()
    if home.exists():
        shutil.rmtree(home)
    work = home / "work"
    work.mkdir(parents=True)
    ws = Workspace.init(home / ".mlsecops", f"sqlite:///{home / '.mlsecops' / 'mlsecops.db'}", actor="bench")
    rng = np.random.default_rng(seed)
    create_user(ws, "admin", Role.ADMIN, actor=None)
    keys = {"admin": create_api_key(ws, "admin", actor=None)}
    admin = authenticate(ws, keys["admin"])
    for user, role in (("alice", Role.APPROVER), ("ci", Role.DEPLOYER), ("viewer", Role.VIEWER)):
        create_user(ws, user, role, actor=admin)
        keys[user] = create_api_key(ws, user, actor=admin)
    create_user(ws, "mlsecops-response", Role.ADMIN, actor=admin)
    regs = {u: Registry(ws, authenticate(ws, k)) for u, k in keys.items()}
    for user in ("admin", "viewer"):
        path = ws.keys_dir / f"bench-{user}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(keys[user] + "\n")
    pub, _ = signing.create_keypair(work / "release.key")
    signing.create_keypair(work / "rogue.key")  # never trusted
    regs["admin"].trust_key("release", pub)
    release, rogue = (
        signing.load_private_key(work / "release.key"),
        signing.load_private_key(work / "rogue.key"),
    )
    for name in DATASETS:
        x, y = _data(name)
        np.savetxt(work / f"{name}.csv", np.column_stack([x, y]), delimiter=",", fmt="%.6g")
    _log("workspace, users and keys", t0)

    import joblib

    made: dict[str, list[int]] = {}
    stats = {
        "signed": 0,
        "untrusted": 0,
        "unsigned": 0,
        "runs": 0,
        "failed_runs": 0,
        "gated": 0,
        "approved": 0,
    }
    names = [f"{DATASETS[i % 3].replace('_', '-')}-{i:02d}" for i in range(models)]
    for i in range(versions):
        name = names[i % models]
        dataset = DATASETS[(i % models) % 3]
        folder = work / "models" / f"{name}-{i}"
        folder.mkdir(parents=True)
        path = folder / "model.joblib"
        joblib.dump(_train(dataset, seed * 10_000 + i), path)
        roll = rng.random()
        if roll < 0.85:
            signing.sign_model(path, release)
            stats["signed"] += 1
        elif roll < 0.9:
            signing.sign_model(path, rogue)
            stats["untrusted"] += 1
        else:
            stats["unsigned"] += 1
        trained = [str(work / f"{dataset}.csv")] if rng.random() < 0.6 else []
        info = regs["ci"].register(name, path, trained_on=trained)
        made.setdefault(name, []).append(info.version)
        if rng.random() < 0.8:
            run_id, passed = _record_run(ws, path, pub, rng, weak=rng.random() < 0.2)
            stats["runs"] += 1
            if passed:
                regs["ci"].attach_gate(f"{name}@{info.version}", run_id)
                stats["gated"] += 1
            else:
                stats["failed_runs"] += 1
        if rng.random() < 0.7:
            regs["alice"].approve(f"{name}@{info.version}")
            stats["approved"] += 1
        if (i + 1) % 50 == 0:
            _log(f"{i + 1} versions registered", t0)
    promotions = rollbacks = 0
    production: dict[str, int] = {}
    for name, vs in made.items():
        for v in vs:
            try:
                regs["admin"].promote(name, v, to="production")
                promotions += 1
                production[name] = v
            except MlsecopsError:
                continue
        if len(vs) > 1 and name in production and rng.random() < 0.4:
            try:
                regs["admin"].rollback(name)
                rollbacks += 1
            except MlsecopsError:
                pass
        regs["admin"].set_alias(name, "champion", vs[-1])
    _log(f"{promotions} promotions, {rollbacks} rollbacks", t0)

    now = time.time()
    dlog = DecisionLog(ws, LoggingPolicy(sample_rate=1.0), start=True)
    model_names = list(made)
    for k in range(decisions):
        name = model_names[k % len(model_names)]
        reject = rng.random() < 0.06
        dlog.record(
            principal=f"client-{int(rng.integers(0, 40))}",
            model=name,
            version=str(production.get(name, made[name][-1])),
            decision=f"rejected:{REJECTIONS[int(rng.integers(0, len(REJECTIONS)))]}"
            if reject
            else "accepted",
            status=429 if reject else 200,
            latency_ms=float(rng.uniform(1, 8)),
            time_s=now - 7 * 86400 * float(rng.random()),
        )
        if k % 5000 == 4999:
            dlog.flush()
    dlog.close()
    _log(f"{dlog.written} decisions logged", t0)

    engine = ResponseEngine(ws, load_policy(ROOT / "examples" / "guard.yaml"), notify=None)
    store = AlertStore(ws, actor="guard")
    incidents = 0
    n_alerts = max(20, versions // 5)
    for k in range(n_alerts):
        name = model_names[int(rng.integers(0, len(model_names)))]
        t = now - 7 * 86400 * float(rng.random())
        kind = ("extraction", "query_attack", "drift", "adversarial_input", "performance")[k % 5]
        sev = Severity.HIGH if rng.random() < 0.6 else Severity.MEDIUM
        evidence: dict[str, Any] = {"queries": int(rng.integers(100, 5000))}
        if kind == "drift":
            evidence = {
                "p_value": float(rng.uniform(1e-6, 1e-3)),
                "columns": ["f1", "f7"],
                "window": "rows 1-5000",
            }
        alert = Alert(
            kind,
            f"client-{k}" if kind not in ("drift", "performance") else "",
            name,
            sev,
            100 + k,
            t,
            evidence,
        )
        if kind in ("extraction", "query_attack"):
            incidents += len(engine.handle([alert]))
        else:
            store.record(alert)
    for a in store.list(limit=10_000)[: n_alerts // 2]:
        if rng.random() < 0.5:
            store.acknowledge(a.id, actor="alice", note="looking")
        else:
            store.resolve(a.id, actor="alice", note="handled")
    _log(f"{n_alerts} alerts, {incidents} incidents", t0)
    before_audit = time.monotonic() - t0

    with ws.session(readonly=True) as s:
        have = int(s.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
    todo = max(0, events - have)
    batch = 2000
    done = 0
    while done < todo:
        n = min(batch, todo - done)
        with ws.session() as s:
            for j in range(n):
                r = rng.random()
                if r < 0.8:
                    audit.append(
                        s,
                        actor="guard",
                        action="monitor.alert",
                        subject=f"alert:{1 + (done + j) % n_alerts}",
                        details={
                            "change": "repeat",
                            "count": done + j,
                            "generated_by": "benchmarks/ui/generate.py",
                        },
                    )
                elif r < 0.95:
                    audit.append(
                        s,
                        actor="guard",
                        action="runtime.principal.throttle",
                        subject=f"principal:client-{(done + j) % 40}",
                        details={"for_s": 60, "generated_by": "benchmarks/ui/generate.py"},
                    )
                else:
                    audit.append(
                        s,
                        actor="viewer",
                        action="registry.denied",
                        subject=model_names[(done + j) % len(model_names)],
                        details={"permission": "promote", "generated_by": "benchmarks/ui/generate.py"},
                    )
        done += n
        if done % 20_000 < batch:
            _log(f"{have + done} audit events", t0)
    audit_s = time.monotonic() - t0 - before_audit
    t_verify = time.monotonic()
    with ws.session(readonly=True) as s:
        status = audit.verify(s)
    verify_s = time.monotonic() - t_verify
    _log(f"audit chain: {status}", t0)
    with ws.session(readonly=True) as s:
        total = int(s.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
    ws.close()
    summary = {
        "home": str(home),
        "workspace": str(home / ".mlsecops"),
        "models": len(made),
        "versions": sum(len(v) for v in made.values()),
        **stats,
        "promotions": promotions,
        "rollbacks": rollbacks,
        "decisions": decisions,
        "alerts": n_alerts,
        "incidents": incidents,
        "audit_events": total,
        "audit_verified": status.ok,
        "audit_verify_s": round(verify_s, 2),
        "seconds_before_audit_top_up": round(before_audit, 1),
        "audit_top_up": {"events": todo, "seconds": round(audit_s, 1)},
        "seconds": round(time.monotonic() - t0, 1),
        "seed": seed,
    }
    (home / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, default=Path("/tmp/mlsecops-ui-bench"), help="Made afresh (deleted first)."
    )
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--audit-events", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    summary = generate(
        args.home,
        versions=args.versions,
        models=args.models,
        events=args.audit_events,
        decisions=args.decisions,
        seed=args.seed,
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
