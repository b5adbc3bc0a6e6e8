"""Start-up fills the caches before the server listens; ``/api/models`` sends postures at a glance."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from tests.unit.web.conftest import Bearer, Site

from mlsecops.core.severity import Severity
from mlsecops.monitor.alerts import AlertStore
from mlsecops.monitor.interface import Alert
from mlsecops.registry import Registry, authenticate
from mlsecops.web._posture import posture_available


def _register(site: Site, name: str) -> int:
    """A real model folder registered by the admin, then a high-severity extraction alert against the
    model: its alerts part fails."""
    folder = Path(tempfile.mkdtemp(prefix="mlsecops-warm-")) / "model"
    folder.mkdir()
    np.save(folder / "weights.npy", np.random.default_rng(0).normal(size=(30, 2)))
    (folder / "config.json").write_text('{"kind": "linear", "classes": 2}')
    version = Registry(site.ws, authenticate(site.ws, site.keys["admin"])).register(name, folder).version
    alert = Alert("extraction", "mallory", name, Severity.HIGH, 140, time.time(), {"score": 0.93})
    AlertStore(site.ws).record(alert)
    return version


def test_start_up_computes_postures_before_serving_and_api_sends_a_summary(
    site: Site, bearer: Bearer
) -> None:
    if not posture_available():
        pytest.skip("mlsecops.posture is not installed")
    from mlsecops import posture
    from mlsecops.web import create_app
    from mlsecops.web._verify import head_seq

    version = _register(site, "warm-model")
    app = create_app(site.ws)
    assert app.state.ui.postures.computed_at is None  # nothing before start-up
    with site.client(app) as c:  # runs the lifespan, as uvicorn does before it listens
        assert app.state.ui.postures.computed_at == head_seq(site.ws)
        doc = c.get("/api/models", headers=bearer("viewer")).json()
        full = c.get(f"/api/models/warm-model/{version}", headers=bearer("viewer")).json()["posture"]
    assert doc["postures_as_of_event"] == doc["audit_head"]
    (model,) = [m for m in doc["models"] if m["name"] == "warm-model"]
    summary = model["versions"][-1]["posture"]
    expected = posture.model_posture(site.ws, "warm-model", version).to_dict()
    assert (summary["grade"], summary["score"]) == (expected["grade"], expected["score"])
    failing = {p["name"] for p in expected["parts"] if p["status"] == "fail"}
    assert failing and {p["name"] for p in summary["failing"]} == failing
    assert all(p["summary"] for p in summary["failing"])
    assert "parts" not in summary and len(full["parts"]) == len(expected["parts"])
