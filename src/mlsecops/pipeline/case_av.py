"""The autonomous-driving case study: a sign classifier attacked, gated, hardened, promoted and guarded.

A stand-in for traffic-sign recognition that ships in scikit-learn: the 8x8 handwritten digits (1,797
images, scaled to [0, 1]), classified by a small CNN. ``run_av_case`` plays the whole life cycle:

1. train the CNN (a few seconds), sign it with the case's release key and register it (scanned,
   stored content-addressed, lineage to its training data);
2. run ``pipeline-blocked.yaml``: scan, PGD at two budgets, the sticker attack (``assess.patch``: one
   square of 1x1 to 3x3 pixels optimised by PGD inside the square, as in the stop-sign study) and
   randomized-smoothing certification; the robustness gate blocks the model, and the registry refuses
   to promote it;
3. harden it (``harden.adversarial_training``, PGD-AT), register and sign the new model, run
   ``pipeline.yaml`` (the same stages and gate on it): it passes, is approved by a second person and
   promoted to production;
4. serve ``signs@production`` with ``mlsecops serve`` (a subprocess on a free loopback port; API keys,
   grants, the default detectors); a benign fleet client sends natural images, then an attacker runs a
   black-box Square attack (``assess.square``) through the HTTP endpoint, one query per request; the
   guard's query-attack detector raises an alert on the attacker (``mlsecops alerts list``) and none on
   the fleet; the guard is stopped cleanly.

Reports go under ``folder`` (``reports/av-case.json`` holds every number printed); runs, versions,
alerts and the audit trail are recorded in the workspace at ``home``, which other cases may share.
Identities: the first run on a workspace without users creates its first admin, ``demo-admin``, whose
API key is kept in ``home/keys/demo-admin.key`` (0600); later runs (and other cases) use that key to
add their own users. Nothing is downloaded.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlsecops.core.errors import ConflictError, InputError, MlsecopsError
from mlsecops.pipeline import _demo_people
from mlsecops.pipeline._demo_train import fit_classifier

if TYPE_CHECKING:
    from mlsecops.monitor.alerts import StoredAlert
    from mlsecops.registry import Actor, Registry
    from mlsecops.store import Workspace

__all__ = ["AV_MODEL", "AV_PIPELINES", "build_av_case", "demo_admin", "run_av_case"]

AV_MODEL = "signs"
"""The registered model's name; the guard serves ``signs@production``."""
AV_PIPELINES = {"pipeline-blocked.yaml": "case_av_blocked.yaml", "pipeline.yaml": "case_av.yaml"}
"""Pipeline files written into the case folder, and the package resources they are copied from."""
"""The demo admin's API key, in the workspace's ``keys/`` (0600)."""
HARDEN_EPS = 0.15
"""PGD-AT budget: a little above the gate's eps (0.1), so the gate's attack is inside what it trained on."""
_SEED = 0
_PEOPLE = {"av-deployer": "deployer", "av-approver": "approver", "av-fleet": "client", "av-prober": "client"}
_GUARD_POLICY = """\
# The guard in front of signs@production: API keys and grants (defaults), generous rate limits so the
# demo measures detection rather than throttling, every decision logged, the default detectors.
version: 1
limits:
  requests_per_second: 100000
  burst: 100000
  daily_budget: 10000000
logging:
  sample_rate: 1.0
"""
BENIGN_BEFORE, BENIGN_AFTER = 300, 100
"""Natural images the fleet sends before and after the attack (the first 256 rows of traffic also set
the query-attack detector's feature ranges: no baseline profile is given)."""
ATTACK_IMAGES, ATTACK_QUERIES, ATTACK_EPS = 3, 300, 0.2
"""The attacker: Square (L-inf) on this many images, at most this many queries each, within this eps."""

Say = Callable[[str], None]


# ----------------------------------------------------------------------------------- data and model
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=_SEED, stratify=y)
    return x_train, y_train, x_test, y_test


def _train_cnn(x: np.ndarray, y: np.ndarray, path: Path) -> None:
    try:
        import torch
        from torch import nn
    except ImportError as err:
        raise InputError("the av case trains a small PyTorch model: pip install 'mlsecops[torch]'") from err
    from mlsecops.models.pytorch import TorchModel

    torch.manual_seed(_SEED)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    fit_classifier(model, x, y, epochs=20, batch_size=128, seed=_SEED)
    TorchModel(model, input_shape=(1, 8, 8), n_classes=10, source=path.name).save(path)


def build_av_case(folder: Path) -> Path:
    """Write the case's data, undefended model and pipelines into ``folder``; return the blocked pipeline.

    Raises:
        InputError: ``folder`` cannot be written, or PyTorch is not installed.
    """
    try:
        models, data = folder / "assets" / "models", folder / "assets" / "data"
        models.mkdir(parents=True, exist_ok=True)
        data.mkdir(parents=True, exist_ok=True)
        x_train, y_train, x_test, y_test = _digits()
        np.savez(data / "train.npz", X=x_train, y=y_train)
        np.savez(data / "test.npz", X=x_test, y=y_test)
        with _one_thread():
            _train_cnn(x_train, y_train, models / "signs-cnn.pt2")
        for out, resource in AV_PIPELINES.items():
            with resources.as_file(resources.files("mlsecops.pipeline") / resource) as src:
                shutil.copyfile(src, folder / out)
    except OSError as err:
        raise InputError(f"cannot build the av case in {folder}: {err.strerror or err}") from err
    return folder / "pipeline-blocked.yaml"


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one thread: these models are tiny, and on a shared machine more threads only contend."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------------- identities
def demo_admin(ws: Workspace) -> Actor:
    """The demo cases' admin (``_demo_people.demo_admin``: bootstrapped in an empty workspace).

    Raises:
        InputError: the workspace has users but no demo admin key (it was not made by the demos).
    """
    return _demo_people.demo_admin(ws)[0]


def _people(ws: Workspace, admin: Actor) -> dict[str, str]:
    """The case's users (created once), each with a fresh API key for this run; clients get the grant."""
    from mlsecops.registry import Role

    return {
        name: _demo_people.demo_user(
            ws, admin, name, Role(role), models=(AV_MODEL,) if role == "client" else (), label="av case"
        )
        for name, role in _PEOPLE.items()
    }


def _release_key(ws: Workspace, admin_registry: Registry) -> Path:
    """The case's signing key (``keys/av-release.key``), trusted for production."""
    from mlsecops.supplychain import signing

    key = ws.keys_dir / "av-release.key"
    if not key.is_file():
        signing.create_keypair(key)
    with suppress(ConflictError):  # trusted by an earlier run
        admin_registry.trust_key("av-release", Path(f"{key}.pub"))
    return key


# ----------------------------------------------------------------------------------- the case
@dataclass
class _Numbers:
    """Everything the case measured (written to ``reports/av-case.json``)."""

    values: dict[str, Any] = field(default_factory=dict)

    def metric(self, result: Any, stage: str, name: str) -> float:
        for r in result.stages:
            if r.stage.name == stage:
                return float(r.report.metrics.get(name, float("nan")))
        return float("nan")


def _run(pipeline: Path, ws: Workspace, actor: str) -> Any:
    from mlsecops.pipeline.runner import run_pipeline
    from mlsecops.pipeline.spec import load_pipeline

    return run_pipeline(load_pipeline(pipeline), workspace=ws, actor=actor)


def _summarise(result: Any, numbers: _Numbers, tag: str, folder: Path) -> dict[str, float]:
    """The run's key numbers, recorded under ``tag``; its HTML report copied to ``reports/av-<tag>.html``."""
    out = {
        "clean_accuracy": numbers.metric(result, "pgd", "clean_accuracy"),
        "pgd_0.05": numbers.metric(result, "pgd", "robust_accuracy@pgd_linf_0.05"),
        "pgd_0.1": numbers.metric(result, "pgd", "robust_accuracy@pgd_linf_0.1"),
        "certified_0.25": numbers.metric(result, "certify", "certified_accuracy@0.25"),
        **{
            f"sticker_{k}x{k}": numbers.metric(result, "stickers", f"patch_success@{k}x{k}")
            for k in (1, 2, 3)
        },
    }
    report = None
    if result.report_dir is not None and (result.report_dir / "report.html").is_file():
        report = folder / "reports" / f"av-{tag}.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.report_dir / "report.html", report)
    numbers.values[tag] = {**out, "gate_passed": result.passed, "run": result.run_id, "report": str(report)}
    return out


def _line(m: dict[str, float]) -> str:
    return (
        f"clean {m['clean_accuracy']:.1%}, under PGD eps 0.1 {m['pgd_0.1']:.1%}, certified at L2 0.25 "
        f"{m['certified_0.25']:.1%}; sticker success 1x1 {m['sticker_1x1']:.0%}, 2x2 {m['sticker_2x2']:.0%}, "
        f"3x3 {m['sticker_3x3']:.0%}"
    )


def _failed_rules(result: Any) -> str:
    return "; ".join(f"{r.rule} (observed {r.observed})" for r in result.gate.results if not r.passed)


def run_av_case(folder: Path, *, home: Path, actor: str, say: Say) -> int:
    """Play the autonomous-driving case end to end (see the module docstring); 0 when it showed what it
    should (the gate blocked the undefended model, passed the hardened one, which was promoted; the
    guard alerted on the black-box attacker and not on the benign client), else 1.

    Raises:
        InputError: the folder cannot be written, PyTorch or the guard's extras are missing, or the
            workspace has users the demos did not make.
    """
    from mlsecops.store import Workspace

    folder = folder.resolve()
    started = time.monotonic()
    numbers = _Numbers()
    say("1/6 training the sign classifier (a small CNN on scikit-learn's 8x8 digits)")
    blocked = build_av_case(folder)
    with Workspace.init(home, actor=actor) as ws, _one_thread():
        ok = _lifecycle(folder, blocked, ws, actor, say, numbers)
        if ok is None:
            return 1
        keys, version = ok
        say(
            f"5/6 serving {AV_MODEL}@production (v{version}) behind the guard; a fleet client and an attacker"
        )
        live = _live(folder, home, ws, keys, say, numbers)
    numbers.values["seconds"] = round(time.monotonic() - started, 1)
    reports = folder / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "av-case.json").write_text(json.dumps(numbers.values, indent=2, default=str) + "\n")
    say(f"6/6 done in {numbers.values['seconds']:.0f} s; reports and numbers in {reports}")
    return 0 if live else 1


def _lifecycle(
    folder: Path, blocked: Path, ws: Workspace, actor: str, say: Say, numbers: _Numbers
) -> tuple[dict[str, str], int] | None:
    """Steps 1-4: register, gate (blocked), harden, gate (passes), approve, promote."""
    from mlsecops.core.checks import Target, get_check
    from mlsecops.registry import Registry, authenticate
    from mlsecops.supplychain import signing

    admin = demo_admin(ws)
    keys = _people(ws, admin)
    deployer = Registry(ws, authenticate(ws, keys["av-deployer"]))
    approver = Registry(ws, authenticate(ws, keys["av-approver"]))
    release = _release_key(ws, Registry(ws, admin))
    private = signing.load_private_key(release)
    models, data = folder / "assets" / "models", folder / "assets" / "data"

    def register(path: Path) -> int:
        sig = signing.sign_model(path, private).signature
        info = deployer.register(AV_MODEL, path, signature=sig, trained_on=[str(data / "train.npz")])
        return int(info.version)

    v1 = register(models / "signs-cnn.pt2")
    say(
        f"2/6 registered {AV_MODEL}@{v1} (scanned, signed); attacking and certifying it (pipeline-blocked.yaml)"
    )
    first = _run(blocked, ws, actor)
    before = _summarise(first, numbers, "undefended", folder)
    say(f"    {_line(before)}")
    if first.passed:
        say("    the gate did not block the undefended model: the case did not show what it should")
        return None
    say(f"    gate FAILED (run {first.run_id}): {_failed_rules(first)}")
    try:
        deployer.attach_gate(f"{AV_MODEL}@{v1}", int(first.run_id))
    except MlsecopsError as err:
        say(f"    the registry refuses the failed run as {AV_MODEL}@{v1}'s gate: {err}")
    numbers.values["undefended_version"] = v1
    say(f"3/6 hardening: PGD adversarial training at eps {HARDEN_EPS:g} (harden.adversarial_training)")
    target = Target(
        options={
            "model": str(models / "signs-cnn.pt2"),
            "data": str(data / "train.npz"),
            "test_data": str(data / "test.npz"),
            "eps": HARDEN_EPS,
            "epochs": 20,
            "steps": 7,
            "eval_steps": 10,
            "output": str(models / "signs-cnn.hardened.pt2"),
        },
        seed=_SEED,
        home=ws.home,
        actor=actor,
    )
    hardened = get_check("harden.adversarial_training").create().run(target)
    numbers.values["hardening"] = dict(hardened.metrics)
    v2 = register(models / "signs-cnn.hardened.pt2")
    say(f"4/6 registered {AV_MODEL}@{v2} (hardened, signed); the same attacks and gate (pipeline.yaml)")
    second = _run(folder / "pipeline.yaml", ws, actor)
    after = _summarise(second, numbers, "hardened", folder)
    say(f"    {_line(after)}")
    if not second.passed:
        say(
            f"    gate FAILED (run {second.run_id}): {_failed_rules(second)}; the case did not show what it should"
        )
        return None
    ref = f"{AV_MODEL}@{v2}"
    deployer.attach_gate(ref, int(second.run_id))
    approver.approve(ref, comment="robustness gate passed; stickers remain a residual risk")
    deployer.promote(AV_MODEL, v2, to="production")
    numbers.values["promoted_version"] = v2
    say(
        f"    gate PASSED (run {second.run_id}); approved by av-approver and promoted: {AV_MODEL}@production = v{v2}"
    )
    if after["sticker_2x2"] >= 0.5:
        say(
            f"    residual risk: a 2x2 sticker still fools it on {after['sticker_2x2']:.0%} of inputs (L-inf "
            "training does not bound an unbounded sticker); see the stickers stage's report"
        )
    return keys, v2


def _live(folder: Path, home: Path, ws: Workspace, keys: dict[str, str], say: Say, numbers: _Numbers) -> bool:
    """Step 5: the guard, the fleet, the attacker, the alert; True when the alert is on the attacker only."""
    from mlsecops.assess.attack import make_attack
    from mlsecops.monitor.alerts import AlertStore
    from mlsecops.pipeline._live_guard import GuardClient, start_guard

    with np.load(folder / "assets" / "data" / "test.npz") as test:
        x_test, y_test = test["X"], test["y"]
    policy = folder / "guard.yaml"
    policy.write_text(_GUARD_POLICY)
    since = dt.datetime.now(dt.UTC)
    guard = start_guard(home, f"{AV_MODEL}@production", policy, folder / "guard.log")
    try:
        fleet = GuardClient(guard.url, AV_MODEL, keys["av-fleet"], input_shape=(1, 8, 8), n_classes=10)
        prober = GuardClient(guard.url, AV_MODEL, keys["av-prober"], input_shape=(1, 8, 8), n_classes=10)
        rng = np.random.default_rng(_SEED)
        natural = rng.permutation(len(x_test))
        right = 0
        for i in natural[:BENIGN_BEFORE]:
            right += int(fleet.predict_proba(x_test[i : i + 1]).argmax() == y_test[i])
        attack = make_attack("square", norm="linf", max_queries=ATTACK_QUERIES, batch_size=1)
        fooled, spent = 0, 0
        for i in natural[BENIGN_BEFORE : BENIGN_BEFORE + ATTACK_IMAGES]:
            res = attack.generate(prober, x_test[i : i + 1], y_test[i : i + 1], eps=ATTACK_EPS, seed=int(i))
            fooled += int(res.fooled[0] & res.clean_correct[0])
            spent += int(res.queries[0])
        for i in natural[BENIGN_BEFORE + ATTACK_IMAGES : BENIGN_BEFORE + ATTACK_IMAGES + BENIGN_AFTER]:
            right += int(fleet.predict_proba(x_test[i : i + 1]).argmax() == y_test[i])
        store = AlertStore(ws)

        def raised(principal: str, kind: str | None = None) -> list[StoredAlert]:
            # this run's: new alerts, or repeats of one left open by an earlier run on this workspace
            found = store.list(model=AV_MODEL, principal=principal, kind=kind)
            return [a for a in found if dt.datetime.fromisoformat(a.last_seen) >= since]

        deadline = time.monotonic() + 15  # the detectors run off the request path
        while not raised("av-prober", "query_attack") and time.monotonic() < deadline:
            time.sleep(0.25)
    finally:
        code = guard.stop()
    on_prober = raised("av-prober", "query_attack")
    on_fleet = raised("av-fleet")
    served = BENIGN_BEFORE + BENIGN_AFTER
    numbers.values["live"] = {
        "fleet_requests": fleet.requests,
        "fleet_statuses": fleet.statuses,
        "fleet_accuracy": right / served,
        "attacker_requests": prober.requests,
        "attacker_images_fooled": fooled,
        "attacker_images": ATTACK_IMAGES,
        "attacker_queries": spent,
        "alert": on_prober[0].to_json() if on_prober else None,
        "queries_until_alert": _query_index(on_prober[0], since) if on_prober else None,
        "fleet_alerts": len(on_fleet),
        "guard_exit_code": code,
    }
    say(
        f"    fleet: {served} natural images, {fleet.statuses.get(200, 0)} answered, accuracy {right / served:.1%}; "
        f"attacker: Square (L-inf {ATTACK_EPS:g}) on {ATTACK_IMAGES} images, {prober.requests} queries, "
        f"{fooled} fooled"
    )
    if on_prober:
        a = on_prober[0]
        say(
            f"    alert #{a.id} {a.kind} ({a.severity}) on av-prober after {_query_index(a, since)} of its queries; "
            f"none on av-fleet ({len(on_fleet)} alerts). See: mlsecops alerts list"
        )
    else:
        say("    no query-attack alert on the attacker: the case did not show what it should")
    say(f"    guard stopped (exit code {code}); its log: {guard.log_path}")
    return bool(on_prober) and not on_fleet and fleet.statuses.get(200, 0) == served


def _query_index(alert: StoredAlert, since: dt.datetime) -> int:
    """The attacker's request count when this run raised ``alert`` (a repeat of an older open alert
    carries this run's count as its latest).
    """
    fresh = dt.datetime.fromisoformat(alert.first_seen) >= since
    return alert.first_query_index if fresh else alert.last_query_index
