"""``torch.export`` programs (``.pt2``): recognised by content, clean exports are safe, tampering is found.

Issue 12 item 11 (scanner half): ``torch.export.save`` archives are the recommended PyTorch format in
torch 2.13. ``torch.export.load`` resolves graph targets by ``getattr`` and calls them, evaluates
symbolic expressions with ``sympy.sympify``, ``exec``-s ``guards_code`` and unpickles ``use_pickle``
payloads, so each of those is planted into a real export here and must be flagged; the untouched export
(dynamic shapes, guards, ``torch.cond``) is the benign twin.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests._deps import require

from mlsecops.supplychain.scanner import ArtifactScan, Verdict, scan_file

torch = require("torch", "torch")

SYSTEM = b"\x80\x02cos\nsystem\n\x8c\x02id\x85R."
"""os.system('id'), assembled by hand."""


class _Net(torch.nn.Module):  # type: ignore[misc]  # torch is untyped here
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm1d(4)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: Any) -> Any:
        y = torch.relu(self.bn(self.conv(x))).mean(-1)
        y = torch.cond(y.sum() > 0, lambda t: t.sin(), lambda t: t.cos(), (y,))
        return self.fc(y[: x.shape[0] // 2])


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("pt2") / "net.pt2"
    batch = torch.export.Dim("batch", min=2) * 2
    ep = torch.export.export(_Net().eval(), (torch.randn(4, 3, 8),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, str(path))
    return path.read_bytes()


def _rewrite(
    data: bytes, edits: dict[str, Callable[[bytes], bytes]], add: dict[str, bytes] | None = None
) -> bytes:
    """The archive with entries ending in each ``edits`` key rewritten, and ``add`` entries appended."""
    buf = io.BytesIO()
    root = ""
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            root = info.filename.split("/", 1)[0]
            for suffix, fn in edits.items():
                if info.filename.endswith(suffix):
                    raw = fn(raw)
            dst.writestr(info.filename, raw)
        for name, raw in (add or {}).items():
            dst.writestr(f"{root}/{name}", raw)
    return buf.getvalue()


def _json_edit(fn: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        doc = json.loads(raw)
        fn(doc)
        return json.dumps(doc).encode()

    return edit


def _scan(tmp_path: Path, data: bytes, name: str = "model.pt2") -> ArtifactScan:
    path = tmp_path / name
    path.write_bytes(data)
    return scan_file(path)


def _nodes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["graph_module"]["graph"]["nodes"]  # type: ignore[no-any-return]


def test_a_real_export_is_safe_and_recognised_by_content(export: bytes, tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(export)) as z:
        doc = json.loads(z.read(next(n for n in z.namelist() if n.endswith("models/model.json"))))
    assert doc["guards_code"], "the benign twin must exercise guards"
    assert "expr_str" in json.dumps(doc), "the benign twin must exercise symbolic expressions"
    assert any(n["target"] == "torch.ops.higher_order.cond" for n in _nodes(doc))
    for name in ("model.pt2", "weights.bin"):
        r = _scan(tmp_path, export, name)
        assert r.format == "torch-export", name
        assert r.verdict is Verdict.SAFE, [(h.title, h.detail) for h in r.hits]


def _set_target(target: str) -> Callable[[dict[str, Any]], None]:
    def fn(doc: dict[str, Any]) -> None:
        _nodes(doc)[0]["target"] = target

    return fn


@pytest.mark.parametrize(
    ("target", "verdict"),
    [
        ("torch.ops.aten.from_file.default", Verdict.MALICIOUS),
        ("torch.load", Verdict.MALICIOUS),
        ("torchvision.save", Verdict.MALICIOUS),  # the loader compares the prefix only: this is torch.save
        ("torch.ops.debugprims.load_tensor.default", Verdict.MALICIOUS),
        ("torch.ops.myns.evil.default", Verdict.SUSPICIOUS),
        ("torch.ops.c10d.broadcast_.default", Verdict.SUSPICIOUS),
        ("torch.ops.prim.rpc_sync.default", Verdict.SUSPICIOUS),
        ("torch.hub.load_state_dict_from_url", Verdict.SUSPICIOUS),
        ("torch.ops.higher_order.inline_asm_elementwise", Verdict.SUSPICIOUS),
        ("torch.ops.aten.not_an_op.default", Verdict.SUSPICIOUS),
        ("torch.ops.aten.relu.__call__", Verdict.SUSPICIOUS),
        ("_operator.attrgetter", Verdict.SUSPICIOUS),
        ("#custom:op", Verdict.SUSPICIOUS),
        ("builtins.eval", Verdict.SUSPICIOUS),
    ],
)
def test_planted_node_targets(export: bytes, tmp_path: Path, target: str, verdict: Verdict) -> None:
    r = _scan(tmp_path, _rewrite(export, {"models/model.json": _json_edit(_set_target(target))}))
    assert r.format == "torch-export" and r.verdict is verdict, [(h.title, h.detail) for h in r.hits]


def _add_guard(code: str) -> Callable[[dict[str, Any]], None]:
    def fn(doc: dict[str, Any]) -> None:
        doc["guards_code"].append(code)

    return fn


def _set_expr(expr: str) -> Callable[[dict[str, Any]], None]:
    def fn(doc: dict[str, Any]) -> None:
        stack: list[Any] = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if "expr_str" in node:
                    node["expr_str"] = expr
                    return
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        raise AssertionError("no expr_str in the export")

    return fn


@pytest.mark.parametrize(
    "edit",
    [
        _add_guard("__import__('os').system('id') == 0"),
        _add_guard("L['x'].size()[0] == 2 # comment"),
        _add_guard("L['x\"); import os; os.system(\"id'].size()[0] == 2"),
        _set_expr("__import__('os').system('id')"),
        _set_expr("Symbol('s0').__class__"),
        _set_expr("Integer(1) + (lambda: 1)()"),
    ],
    ids=["guard call", "guard comment", "guard quote", "expr import", "expr dunder", "expr lambda"],
)
def test_code_in_guards_and_symbolic_expressions_is_malicious(
    export: bytes, tmp_path: Path, edit: Callable[[dict[str, Any]], None]
) -> None:
    r = _scan(tmp_path, _rewrite(export, {"models/model.json": _json_edit(edit)}))
    assert r.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS), [(h.title, h.detail) for h in r.hits]
    assert any(h.kind == "torch-export" for h in r.hits)


def test_code_calling_guard_is_malicious(export: bytes, tmp_path: Path) -> None:
    edit = _json_edit(_add_guard("__import__('os').system('id') == 0"))
    r = _scan(tmp_path, _rewrite(export, {"models/model.json": edit}))
    assert r.verdict is Verdict.MALICIOUS


def test_pickled_weight_payload_is_walked(export: bytes, tmp_path: Path) -> None:
    def use_pickle(doc: dict[str, Any]) -> None:
        for meta in doc["config"].values():
            if meta["path_name"] == "weight_0":
                meta["use_pickle"] = True

    edits = {
        "model_weights_config.json": _json_edit(use_pickle),
        "data/weights/weight_0": lambda _raw: SYSTEM,
    }
    r = _scan(tmp_path, _rewrite(export, edits))
    assert r.verdict is Verdict.MALICIOUS, r.hits
    assert any(h.callable == "os.system" and h.entry.endswith("data/weights/weight_0") for h in r.hits)


def test_opaque_constant_is_walked(export: bytes, tmp_path: Path) -> None:
    def opaque(doc: dict[str, Any]) -> None:
        doc["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True}

    edits = {"model_constants_config.json": _json_edit(opaque)}
    r = _scan(tmp_path, _rewrite(export, edits, add={"data/constants/opaque_obj_0": SYSTEM}))
    assert r.verdict is Verdict.MALICIOUS, r.hits


def test_custom_class_and_sample_inputs(export: bytes, tmp_path: Path) -> None:
    def custom(doc: dict[str, Any]) -> None:
        doc["graph_module"]["graph"]["custom_obj_values"]["obj"] = {
            "name": "obj",
            "class_fqn": "__torch__.torch.classes.dist_c10d.FileStore",
        }

    r = _scan(tmp_path, _rewrite(export, {"models/model.json": _json_edit(custom)}))
    assert r.verdict is Verdict.SUSPICIOUS, r.hits
    sample = _rewrite(export, {"sample_inputs/model.pt": lambda raw: _payload_in_torch_zip(raw)})
    assert _scan(tmp_path, sample, "s.pt2").verdict is Verdict.MALICIOUS


def _payload_in_torch_zip(raw: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, SYSTEM if info.filename.endswith("data.pkl") else src.read(info))
    return buf.getvalue()


def test_unreadable_program_json_is_not_safe(export: bytes, tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = _scan(tmp_path, _rewrite(export, {"models/model.json": lambda _raw: deep}))
    assert r.verdict is not Verdict.SAFE
    r = _scan(tmp_path, _rewrite(export, {"models/model.json": lambda _raw: b"{not json"}))
    assert r.verdict is not Verdict.SAFE
