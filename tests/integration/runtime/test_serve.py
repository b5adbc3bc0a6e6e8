"""``mlsecops serve digits@production`` over HTTP: the protocol, every control, metrics and logs."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest
from tests.integration.runtime.conftest import Guard, Registry

pytestmark = pytest.mark.timeout(300)


def _outputs(resp: Any) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in resp.json()["outputs"]}


def test_health_and_server_metadata_need_no_credentials(client: Any) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "mlsecops-guard" and meta["version"]


def test_model_metadata_describes_the_served_version(guard: Guard, client: Any) -> None:
    assert client.get("/v2/models/digits").status_code == 401
    meta = client.get("/v2/models/digits", headers=guard.headers()).json()
    assert meta["name"] == "digits" and meta["versions"] == ["1"] and meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 64]}]
    assert [o["name"] for o in meta["outputs"]] == ["top_k_classes", "top_k_probabilities", "label"]
    assert client.get("/v2/models/digits/versions/1", headers=guard.headers()).status_code == 200
    assert client.get("/v2/models/digits/ready", headers=guard.headers()).json()["ready"] is True
    assert client.get("/v2/models/digits/versions/9/ready", headers=guard.headers()).status_code == 404


def test_infer_answers_with_hardened_outputs(guard: Guard, client: Any) -> None:
    rows = guard.X[:5]
    r = client.post("/v2/models/digits/infer", json=guard.body(rows, id="req-1"), headers=guard.headers())
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model_name"] == "digits" and doc["model_version"] == "1" and doc["id"] == "req-1"
    out = _outputs(r)
    assert set(out) == {"top_k_classes", "top_k_probabilities", "label"}  # no full probability vector
    assert out["top_k_classes"]["shape"] == [5, 3] and out["top_k_classes"]["datatype"] == "INT64"
    probs = np.array(out["top_k_probabilities"]["data"]).reshape(5, 3)
    assert np.all(np.diff(probs, axis=1) <= 0)  # most likely first
    assert np.array_equal(probs, np.round(probs, 4))  # rounded to 4 decimals
    labels = out["label"]["data"]
    assert labels == np.array(out["top_k_classes"]["data"]).reshape(5, 3)[:, 0].tolist()
    assert np.mean(np.array(labels) == guard.y[:5]) >= 0.6
    # the versioned route, and asking for one output by name
    r = client.post(
        "/v2/models/digits/versions/1/infer",
        json=guard.body(rows[:1], outputs=[{"name": "label"}]),
        headers=guard.headers(),
    )
    assert set(_outputs(r)) == {"label"}
    r = client.post(
        "/v2/models/digits/infer",
        json=guard.body(rows[:1], outputs=[{"name": "probabilities"}]),
        headers=guard.headers(),
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "outputs[0].name"


def test_nested_data_and_int_datatype_are_accepted(guard: Guard, client: Any) -> None:
    x = guard.X[:2].astype(int)
    body = {"inputs": [{"name": "input-0", "shape": [2, 64], "datatype": "INT32", "data": x.tolist()}]}
    assert client.post("/v2/models/digits/infer", json=body, headers=guard.headers()).status_code == 200


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer mlsk_nope_nope", 401),
        ("Basic YWxpY2U6cHc=", 401),
        ("Bearer", 401),
    ],
)
def test_without_valid_credentials_401(guard: Guard, client: Any, header: str | None, status: int) -> None:
    headers = {"Authorization": header} if header is not None else {}
    r = client.post("/v2/models/digits/infer", json=guard.body(), headers=headers)
    assert r.status_code == status
    assert r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_without_a_grant_403(guard: Guard, client: Any) -> None:
    r = client.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers("bob"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    # a role that may not infer (the deployer) is refused too
    r = client.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers("deployer"))
    assert r.status_code == 403


def test_unknown_model_or_version_404(guard: Guard, client: Any) -> None:
    r = client.post("/v2/models/nope/infer", json=guard.body(), headers=guard.headers())
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.post("/v2/models/digits/versions/7/infer", json=guard.body(), headers=guard.headers())
    assert r.status_code == 404
    r = client.get("/v2/nothing/here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"inputs": [{"name": "input-0", "shape": [1, 63], "datatype": "FP32", "data": [0.0] * 63}]},
            "inputs[0]",
        ),
        (
            {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 63}]},
            "inputs[0].shape",
        ),
        (
            {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "BYTES", "data": ["a"] * 64}]},
            "inputs[0]",
        ),
        (
            {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP32", "data": ["1"] * 64}]},
            "inputs[0].data",
        ),
        (
            {"inputs": [{"name": "input-0", "shape": [1, 64], "datatype": "FP99", "data": [0] * 64}]},
            "inputs[0].datatype",
        ),
        ({"inputs": []}, "inputs"),
        (  # the right number of values in the wrong layout: [1, 8, 8] is not [n, 64]
            {"inputs": [{"name": "input-0", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}]},
            "inputs[0]",
        ),
        (
            {"inputs": [{"name": "input-0", "shape": [64], "datatype": "FP32", "data": [0.0] * 64}]},
            "inputs[0]",
        ),
    ],
)
def test_invalid_inputs_422_name_the_field(
    guard: Guard, client: Any, body: dict[str, Any], field: str
) -> None:
    r = client.post("/v2/models/digits/infer", json=body, headers=guard.headers())
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_input"
    assert err["field"].startswith(field), err


def test_nan_and_infinity_are_refused_with_their_position(guard: Guard, client: Any) -> None:
    for bad in ("NaN", "Infinity", "1e400"):
        payload = '{"inputs":[{"name":"input-0","shape":[1,64],"datatype":"FP64","data":[0' + ",0" * 30
        payload += f",{bad}" + ",0" * 32 + "]}]}"
        r = client.post(
            "/v2/models/digits/infer",
            content=payload,
            headers={**guard.headers(), "Content-Type": "application/json"},
        )
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["field"].startswith("inputs[0]")


def test_rate_limit_429_with_retry_after(guard: Guard, registry: Registry, client: Any) -> None:
    from mlsecops.runtime.controls import throttle_principal, unthrottle_principal

    throttle_principal(registry.ws, "carol", requests_per_second=0.01, burst=1, reason="test", actor="root")
    try:
        codes = [
            client.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers("carol"))
            for _ in range(3)
        ]
        assert codes[0].status_code == 200
        limited = codes[-1]
        assert limited.status_code == 429, limited.text
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        # other principals are not limited by carol's bucket
        assert (
            client.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers()).status_code
            == 200
        )
    finally:
        unthrottle_principal(registry.ws, "carol", reason="test over", actor="root")


def test_malformed_requests_take_tokens_too(guard: Guard, registry: Registry, client: Any) -> None:
    from mlsecops.runtime.controls import throttle_principal, unthrottle_principal

    throttle_principal(registry.ws, "gina", requests_per_second=0.01, burst=2, reason="test", actor="root")
    try:
        headers = {**guard.headers("gina"), "Content-Type": "application/json"}
        first = client.post("/v2/models/digits/infer", content=b"{broken", headers=headers)
        second = client.post("/v2/models/digits/infer", content=b'{"inputs": []}', headers=headers)
        assert (first.status_code, second.status_code) == (400, 422)
        r = client.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers("gina"))
        assert r.status_code == 429, r.text
    finally:
        unthrottle_principal(registry.ws, "gina", reason="test over", actor="root")


def test_revoking_a_key_takes_effect_on_the_next_request(
    guard: Guard, registry: Registry, client: Any
) -> None:
    from mlsecops.registry import authenticate, create_api_key, revoke_api_key

    admin = authenticate(registry.ws, registry.keys["admin"])
    key = create_api_key(registry.ws, "dave", actor=admin)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/v2/models/digits/infer", json=guard.body(), headers=headers).status_code == 200
    key_id = key.split("_")[1]
    revoke_api_key(registry.ws, key_id, actor=admin)
    r = client.post("/v2/models/digits/infer", json=guard.body(), headers=headers)
    assert r.status_code == 401


def test_label_only_control_hides_scores(guard: Guard, registry: Registry, client: Any) -> None:
    from mlsecops.runtime.controls import set_label_only

    set_label_only(registry.ws, "erin", reason="suspected extraction", actor="root")
    try:
        r = client.post(
            "/v2/models/digits/infer", json=guard.body(guard.X[:3]), headers=guard.headers("erin")
        )
        assert set(_outputs(r)) == {"label"}
        r = client.post("/v2/models/digits/infer", json=guard.body(guard.X[:3]), headers=guard.headers())
        assert "top_k_probabilities" in _outputs(r)
    finally:
        set_label_only(registry.ws, "erin", reason="cleared", actor="root", enabled=False)


def test_metrics_parse_and_count(guard: Guard, client: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(12):  # enough for alice to get a label of her own
        client.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers())
    client.post("/v2/models/digits/infer", json=guard.body())
    assert client.get("/metrics").status_code == 401  # who calls which model is not public
    assert client.get("/metrics", headers=guard.headers("alice")).status_code == 403  # a client role
    r = client.get("/metrics", headers=guard.headers("deployer"))
    assert r.status_code == 200
    text = r.text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["mlsecops_guard_requests"]
    infer_ok = sum(
        s.value
        for s in requests.samples
        if s.labels.get("endpoint") == "infer" and s.labels.get("code") == "200"
    )
    assert infer_ok >= 12
    assert any(
        s.labels.get("reason") == "unauthenticated" and s.value >= 1
        for s in families["mlsecops_guard_rejections"].samples
    )
    assert "mlsecops_guard_request_seconds" in families
    assert [s.value for s in families["mlsecops_guard_in_flight"].samples] == [0.0]  # nothing in flight now
    principals = {s.labels["principal"] for s in families["mlsecops_guard_principal_requests"].samples}
    assert "alice" in principals
    model = families["mlsecops_guard_model_requests"].samples
    assert any(
        s.labels == {"model": "digits", "version": "1", "outcome": "ok"}
        for s in model
        if s.name.endswith("_total")
    )
    # the label set is bounded: no raw path, no key, no unknown model name
    assert "nope" not in {s.labels.get("model") for s in model}


def test_access_log_is_json_and_holds_no_secret(guard: Guard, client: Any) -> None:
    client.post("/v2/models/digits/infer?token=sekret-in-query", json=guard.body(), headers=guard.headers())
    client.post(
        "/v2/models/digits/infer", json=guard.body(), headers={"Authorization": "Bearer mlsk_bad_secretvalue"}
    )
    time.sleep(0.3)
    text = guard.log()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    infer = [line for line in lines if line["path"] == "/v2/models/digits/infer"]
    assert infer and {"status", "ms", "principal", "model"} <= set(infer[-1])
    assert any(line["principal"] == "alice" and line["status"] == 200 for line in infer)
    for secret in [*guard.keys.values(), "sekret-in-query", "secretvalue"]:
        assert secret not in text
    assert "Traceback" not in text


def test_decision_log_records_requests(guard: Guard, client: Any) -> None:
    from sqlalchemy import func, select

    from mlsecops.runtime._decision_tables import DecisionRecord

    client.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers())
    deadline = time.monotonic() + 10
    ws = guard.workspace()
    try:
        while time.monotonic() < deadline:
            with ws.session(readonly=True) as s:
                n = s.execute(select(func.count()).select_from(DecisionRecord)).scalar_one()
            if n:
                break
            time.sleep(0.3)
        assert n >= 1
    finally:
        ws.close()


def test_openapi_document(client: Any) -> None:
    doc = client.get("/openapi.json").json()
    assert "/v2/models/{name}/infer" in doc["paths"]
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]
    assert "requestBody" in infer and {"401", "403", "413", "422", "429"} <= set(infer["responses"])
