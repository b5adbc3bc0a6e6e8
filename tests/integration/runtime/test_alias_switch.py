"""Following production: promotion and rollback under load switch versions with zero failed requests,
and every switch is in the audit trail; a version that fails verification is never served."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from tests.integration.runtime.conftest import Guard, Registry, train_digits

from mlsecops.core.errors import VerificationError

pytestmark = pytest.mark.timeout(300)


def _hammer(guard: Guard, stop: threading.Event, seen: Counter[str], failures: list[str]) -> None:
    import httpx

    with httpx.Client(base_url=guard.url, timeout=10) as c:
        while not stop.is_set():
            try:
                r = c.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers("alice"))
            except httpx.HTTPError as err:
                failures.append(f"{type(err).__name__}: {err}")
                continue
            if r.status_code != 200:
                failures.append(f"{r.status_code}: {r.text[:200]}")
            else:
                seen[r.json()["model_version"]] += 1


def _wait_for(seen: Counter[str], version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and seen[version] < 20:
        time.sleep(0.1)


def _switches(guard: Guard) -> list[tuple[str, dict[str, Any]]]:
    import json

    from mlsecops.store import audit

    ws = guard.workspace()
    try:
        with ws.session(readonly=True) as s:
            return [
                (e.subject, json.loads(e.details))
                for e in audit.iter_events(s, action="runtime.model_switched")
            ]
    finally:
        ws.close()


def test_promotion_and_rollback_under_load(guard: Guard, registry: Registry) -> None:
    stop = threading.Event()
    seen: Counter[str] = Counter()
    failures: list[str] = []
    threads = [threading.Thread(target=_hammer, args=(guard, stop, seen, failures)) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        _wait_for(seen, "1")
        model, _, _ = train_digits(seed=1)
        v2 = registry.release(model, "v2")
        _wait_for(seen, str(v2))
        assert seen[str(v2)] >= 20, (seen, guard.log()[-2000:])
        registry.regs["deployer"].rollback("digits")
        before = seen["1"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and seen["1"] < before + 20:
            time.sleep(0.1)
        assert seen["1"] >= before + 20
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert failures == []
    switches = _switches(guard)
    assert [(d["from"], d["to"]) for _, d in switches][-2:] == [("1", str(v2)), (str(v2), "1")]
    assert switches[-1][1]["ref"] == "digits@production"


def test_a_version_that_does_not_verify_is_refused(guard: Guard, registry: Registry) -> None:
    import json

    from mlsecops.registry import resolve
    from mlsecops.runtime.serving import load_registered

    model, _, _ = train_digits(seed=2)
    version = registry.release(model, "v3-tampered", promote=False)
    with registry.ws.session(readonly=True) as s:
        _m, v = resolve(s, f"digits@{version}")
        (_name, sha, _size) = json.loads(v.files)[0]
    blob = registry.ws.artifacts.path_for(sha)
    blob.chmod(0o600)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="signature does not verify"):
        load_registered(registry.ws, f"digits@{version}")


def test_an_unsigned_version_is_refused(guard: Guard, registry: Registry, tmp_path: Any) -> None:
    import joblib

    from mlsecops.runtime.serving import load_registered

    model, _, _ = train_digits(seed=3)
    path = tmp_path / "unsigned.joblib"
    joblib.dump(model, path)
    info = registry.regs["deployer"].register("digits", path)
    with pytest.raises(VerificationError, match="not signed"):
        load_registered(registry.ws, f"digits@{info.version}")
