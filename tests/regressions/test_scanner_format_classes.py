"""Issue 17, items 5, 6 and 8: format classes other scanners' corpora hold and ours did not.

Each class plants the technique and asserts it is found, beside a benign twin of the same format that
must be ``safe``: TensorFlow SavedModel ops and Keras v2 metadata, TFLite custom and Flex ops, Keras 3
archives that embed a SavedModel or a pickle, Jinja2 chat templates that reach Python internals (in
tokenizer_config.json, chat_template.jinja and GGUF), remote code named by ``auto_map``, code-like
metadata (low severity only), and 7-Zip archives under the zip/tar limits.
"""

from __future__ import annotations

import builtins
import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from tests import _formats17 as F
from tests._deps import require

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner import ArtifactScan, ScanLimits, Verdict, scan_file


def _scan(tmp_path: Path, name: str, data: bytes, **kw: Any) -> ArtifactScan:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return scan_file(path, **kw)


def _titles(r: ArtifactScan) -> list[str]:
    return [h.title for h in r.hits]


# -- 5. TensorFlow SavedModel, Keras v2 metadata, TFLite, Keras 3 ------------------------------------------


@pytest.mark.parametrize(
    ("data", "verdict", "title"),
    [
        (F.saved_model(["WriteFile"]), Verdict.MALICIOUS, "TensorFlow op WriteFile"),
        (
            F.saved_model(functions={"__inference_call_7": ["MatMul", "ReadFile"]}),
            Verdict.SUSPICIOUS,
            "ReadFile",
        ),
        (F.saved_model(functions={"f": ["EagerPyFunc"]}), Verdict.MALICIOUS, "EagerPyFunc"),
        (F.saved_model(functions={"f": ["PyFunc"]}), Verdict.MALICIOUS, "PyFunc"),
        (F.saved_model(functions={"f": ["MatchingFiles"]}), Verdict.SUSPICIOUS, "MatchingFiles"),
        (F.saved_model(functions={"f": ["DebugIdentityV2"]}), Verdict.MALICIOUS, "DebugIdentityV2"),
        (F.saved_model(stripped_ops=["WriteFile"]), Verdict.MALICIOUS, "WriteFile"),  # only in the op list
        (
            F.saved_model(
                graph_nodes=[F.node_def("p", "PrintV2", {"output_stream": "file:///home/u/.bashrc"})]
            ),
            Verdict.MALICIOUS,
            "PrintV2 to file",
        ),
        (F.saved_model(assets=["../../../../etc/passwd"]), Verdict.SUSPICIOUS, "asset outside"),
        (F.saved_model(keras_metadata=[F.KERAS2_DENSE, F.KERAS2_LAMBDA]), Verdict.MALICIOUS, "Lambda"),
    ],
    ids=[
        "graph-writefile",
        "function-readfile",
        "eagerpyfunc",
        "pyfunc",
        "matchingfiles",
        "debug-writer",
        "stripped-op-list",
        "printv2-file",
        "asset-traversal",
        "object-graph-keras-lambda",
    ],
)
def test_savedmodel_dangerous_content(tmp_path: Path, data: bytes, verdict: Verdict, title: str) -> None:
    r = _scan(tmp_path, "m/saved_model.pb", data)
    assert r.format == "tf-savedmodel"
    assert r.verdict is verdict, r.hits
    assert any(title in t for t in _titles(r)), r.hits


def test_savedmodel_benign_twin_is_safe(tmp_path: Path) -> None:
    # Serving and saver functions (SaveV2, RestoreV2, MergeV2Checkpoints...) are in every SavedModel.
    r = _scan(tmp_path, "m/saved_model.pb", F.saved_model(["Placeholder"], keras_metadata=[F.KERAS2_DENSE]))
    assert r.format == "tf-savedmodel" and r.verdict is Verdict.SAFE, r.hits


def test_savedmodel_malformed_fails_closed(tmp_path: Path) -> None:
    # TensorFlow refuses a truncated protobuf (nothing runs), but a file we cannot read is never "safe".
    data = F.saved_model(["WriteFile", "MatMul"])
    r = _scan(tmp_path, "m/saved_model.pb", data[: len(data) - 40])
    assert r.verdict is Verdict.SUSPICIOUS and "malformed SavedModel protobuf" in _titles(r)


def test_savedmodel_unknown_group_fields_are_skipped_not_trusted(tmp_path: Path) -> None:
    # Protobuf parsers keep unknown groups (wire types 3/4); a reader that stops there misses what follows.
    group = F.varint(99 << 3 | 3) + F.field(1, 5) + F.varint(99 << 3 | 4)
    graph = group + F.field(1, F.node_def("w", "WriteFile"))
    meta = group + F.field(2, graph)
    r = _scan(tmp_path, "m/saved_model.pb", F.field(1, 1) + F.field(2, meta))
    assert r.verdict is Verdict.MALICIOUS, r.hits


@pytest.mark.parametrize("kind", ["frozen-graph", "pbtxt"])
def test_frozen_and_text_graphs(tmp_path: Path, kind: str) -> None:
    build, name = (
        (F.frozen_graph, "frozen_graph.pb")
        if kind == "frozen-graph"
        else (F.saved_model_text, "saved_model.pbtxt")
    )
    r = _scan(tmp_path, f"bad/{name}", build(["Placeholder", "MatMul", "WriteFile"]))
    assert r.verdict is Verdict.MALICIOUS, r.hits
    r = _scan(tmp_path, f"good/{name}", build(["Placeholder", "MatMul", "Relu", "SaveV2"]))
    assert r.format.startswith("tf-") and r.verdict is Verdict.SAFE, r.hits


def test_keras_metadata_pb(tmp_path: Path) -> None:
    r = _scan(tmp_path, "m/keras_metadata.pb", F.keras_metadata_pb([F.KERAS2_DENSE, F.KERAS2_LAMBDA]))
    assert r.format == "keras-metadata" and r.verdict is Verdict.MALICIOUS
    custom = F.keras2_layer("Custom>Exfiltrate", {"units": 2})
    r = _scan(tmp_path, "c/keras_metadata.pb", F.keras_metadata_pb([F.KERAS2_DENSE, custom]))
    assert r.verdict is Verdict.SUSPICIOUS and any("Custom>Exfiltrate" in t for t in _titles(r))
    r = _scan(tmp_path, "b/keras_metadata.pb", F.keras_metadata_pb([F.KERAS2_DENSE, F.KERAS2_DENSE]))
    assert r.format == "keras-metadata" and r.verdict is Verdict.SAFE, r.hits


@pytest.mark.parametrize(
    ("ops", "verdict"),
    [
        ([(F.BUILTIN_CONV_2D, ""), (F.BUILTIN_CUSTOM, "FlexWriteFile")], Verdict.MALICIOUS),
        ([(F.BUILTIN_CUSTOM, "FlexReadFile")], Verdict.SUSPICIOUS),
        ([(F.BUILTIN_CUSTOM, "FlexEagerPyFunc")], Verdict.MALICIOUS),
        ([(F.BUILTIN_FULLY_CONNECTED, ""), (F.BUILTIN_CUSTOM, "Unknown_Native_Op")], Verdict.SUSPICIOUS),
        # benign twins: builtins, a custom op the stock runtime implements, a harmless Flex op
        ([(F.BUILTIN_CONV_2D, ""), (F.BUILTIN_FULLY_CONNECTED, "")], Verdict.SAFE),
        ([(F.BUILTIN_CONV_2D, ""), (F.BUILTIN_CUSTOM, "TFLite_Detection_PostProcess")], Verdict.SAFE),
        ([(F.BUILTIN_CUSTOM, "FlexRFFT")], Verdict.SAFE),
    ],
    ids=[
        "flex-writefile",
        "flex-readfile",
        "flex-pyfunc",
        "custom-op",
        "builtins",
        "detection-pp",
        "flex-rfft",
    ],
)
def test_tflite_operator_codes(tmp_path: Path, ops: list[tuple[int, str]], verdict: Verdict) -> None:
    r = _scan(tmp_path, "model.tflite", F.tflite(ops))
    assert r.format == "tflite" and r.verdict is verdict, r.hits


def test_tflite_metadata_zip_is_expected_and_scanned(tmp_path: Path) -> None:
    # TFLite metadata appends a zip of associated files (labels, vocabularies) to the flatbuffer.
    model = F.tflite([(F.BUILTIN_CONV_2D, "")])
    r = _scan(tmp_path, "labels.tflite", model + F.zip_of({"labels.txt": b"cat\ndog\n"}))
    assert r.format == "tflite" and r.verdict is Verdict.SAFE, r.hits
    r = _scan(tmp_path, "bad.tflite", model + F.zip_of({"labels.txt": b"cat\n", "x.pkl": F.MALICIOUS_PICKLE}))
    assert r.verdict is Verdict.MALICIOUS


def test_tflite_custom_code_read_from_the_deprecated_field(tmp_path: Path) -> None:
    # The interpreter takes max(builtin_code, deprecated_builtin_code): a CUSTOM hidden in the int8 field.
    data = bytearray(F.tflite([(F.BUILTIN_CUSTOM, "FlexWriteFile")]))
    pos = data.index(struct.pack("<i", F.BUILTIN_CUSTOM))
    struct.pack_into("<i", data, pos, 0)  # builtin_code 0, deprecated_builtin_code still 32
    assert _scan(tmp_path, "model.tflite", bytes(data)).verdict is Verdict.MALICIOUS


@pytest.mark.parametrize(
    ("extra", "verdict"),
    [
        ({"assets/saved_model.pb": F.saved_model(["WriteFile"])}, Verdict.MALICIOUS),
        ({"assets/state.bin": F.MALICIOUS_PICKLE}, Verdict.MALICIOUS),
        ({"assets/keras_metadata.pb": F.keras_metadata_pb([F.KERAS2_LAMBDA])}, Verdict.MALICIOUS),
        ({"assets/saved_model.pb": F.saved_model(), "assets/state.bin": F.BENIGN_PICKLE}, Verdict.SAFE),
    ],
    ids=["embedded-savedmodel", "embedded-pickle", "embedded-keras-metadata", "benign"],
)
def test_keras3_archive_embeds(tmp_path: Path, extra: dict[str, bytes], verdict: Verdict) -> None:
    r = _scan(tmp_path, "model.keras", F.keras3(F.KERAS3_DENSE, extra))
    assert r.format == "keras" and r.verdict is verdict, r.hits


def test_onnx_models_are_not_taken_for_savedmodels(tmp_path: Path) -> None:
    onnx = require("onnx", "test")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, producer_name="pytorch")
    model.metadata_props.add(key="notes", value="trained on 4 GPUs")
    r = _scan(
        tmp_path, "m.onnx", onnx.save_model(model, tmp_path / "m.onnx") or (tmp_path / "m.onnx").read_bytes()
    )
    assert r.format == "onnx" and r.verdict is Verdict.SAFE, r.hits


# -- 6. templates, remote code, metadata -------------------------------------------------------------------

_SUSPICIOUS_ONLY = {"computed-attr", "computed-subscript"}


@pytest.mark.parametrize("name", sorted(F.SSTI_TEMPLATES))
@pytest.mark.parametrize("carrier", ["tokenizer_config", "template-list", "jinja", "gguf"])
def test_chat_template_escapes(tmp_path: Path, name: str, carrier: str) -> None:
    tpl = F.SSTI_TEMPLATES[name]
    if carrier == "tokenizer_config":
        r = _scan(tmp_path, "tokenizer_config.json", F.tokenizer_config(tpl))
    elif carrier == "template-list":
        data = F.tokenizer_config(
            [{"name": "default", "template": F.CHATML_TEMPLATE}, {"name": "rag", "template": tpl}]
        )
        r = _scan(tmp_path, "tokenizer_config.json", data)
    elif carrier == "jinja":
        r = _scan(tmp_path, "chat_template.jinja", tpl.encode())
    else:
        r = _scan(tmp_path, "model.gguf", F.gguf({"general.name": "m", "tokenizer.chat_template": tpl}))
    want = Verdict.SUSPICIOUS if name in _SUSPICIOUS_ONLY else Verdict.MALICIOUS
    assert r.verdict is want, (carrier, r.hits)


@pytest.mark.parametrize("name", sorted(F.BENIGN_TEMPLATES))
def test_real_chat_templates_are_safe(tmp_path: Path, name: str) -> None:
    tpl = F.BENIGN_TEMPLATES[name]
    for fname, data in [
        ("tokenizer_config.json", F.tokenizer_config(tpl)),
        ("chat_template.jinja", tpl.encode()),
        ("model.gguf", F.gguf({"general.name": "m", "tokenizer.chat_template": tpl})),
        ("tokenizer_config.json", F.tokenizer_config([{"name": "default", "template": tpl}])),
    ]:
        r = _scan(tmp_path, fname, data)
        assert r.verdict is Verdict.SAFE, (fname, r.hits)


def test_template_that_mentions_import_is_safe(tmp_path: Path) -> None:
    # The old text search called this critical; the syntax tree shows it is just prompt text.
    tpl = (
        "{{ 'You are a Python tutor. Explain import statements and __init__.py files.' }}" + F.CHATML_TEMPLATE
    )
    assert _scan(tmp_path, "tokenizer_config.json", F.tokenizer_config(tpl)).verdict is Verdict.SAFE


def test_oversized_gguf_template_is_not_silently_skipped(tmp_path: Path) -> None:
    tpl = F.CHATML_TEMPLATE + " " * (1 << 20) + F.SSTI_TEMPLATES["dunder-chain"]
    r = _scan(tmp_path, "model.gguf", F.gguf({"tokenizer.chat_template": tpl}))
    assert r.verdict is not Verdict.SAFE


@pytest.mark.parametrize("name", sorted(F.MALICIOUS_MODELING))
def test_remote_code_modules(tmp_path: Path, name: str) -> None:
    (tmp_path / "config.json").write_bytes(F.remote_code_config("modeling_evil.M"))
    r = _scan(tmp_path, "modeling_evil.py", F.MALICIOUS_MODELING[name].encode())
    assert r.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS), r.hits
    assert any(h.kind == "python" and h.severity >= Severity.HIGH for h in r.hits), r.hits
    # the configuration naming a module that is present is itself fine: the module is judged as a file
    assert scan_file(tmp_path / "config.json").verdict is Verdict.SAFE


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("padded.py", b'"""' + b"doc " * 30000 + b'"""\nimport os\nos.system("id")\n'),
        ("ctrl.py", b"# \x01 a control byte makes this 'binary'\nimport os\nos.system('id')\n"),
        ("class.py", b"class M:\n    def __init__(self):\n        __import__('os').system('id')\n"),
        ("padded.jinja", b"hello " * 20000 + b"{{ ''.__class__.__mro__ }}"),
        ("hi.jinja", b"Hi {{ cycler.__init__.__globals__ }}"),  # 'H' and 'h' open pickles too
    ],
    ids=[
        "padded-python",
        "control-byte-python",
        "class-first-python",
        "padded-template",
        "pickle-letter-template",
    ],
)
def test_code_text_evasions(tmp_path: Path, name: str, data: bytes) -> None:
    assert _scan(tmp_path, name, data).verdict is Verdict.MALICIOUS


def test_vocabulary_text_is_not_parsed_as_python(tmp_path: Path) -> None:
    data = b"\n".join(b"word%d" % i for i in range(100_000)) + b"\nimport\nopen\neval\n"
    t0 = time.monotonic()
    assert _scan(tmp_path, "vocab.txt", data).verdict is Verdict.SAFE
    assert time.monotonic() - t0 < 1.0


def test_remote_code_benign_twin_is_safe(tmp_path: Path) -> None:
    (tmp_path / "modeling_tiny.py").write_text(F.BENIGN_MODELING)
    (tmp_path / "config.json").write_bytes(F.remote_code_config("modeling_tiny.TinyModel"))
    for name in ("modeling_tiny.py", "config.json"):
        r = scan_file(tmp_path / name)
        assert r.verdict is Verdict.SAFE, (name, r.hits)
    assert any(h.title == "configuration runs remote code" for h in scan_file(tmp_path / "config.json").hits)


@pytest.mark.parametrize(
    ("ref", "title"),
    [
        ("modeling_gone.Model", "remote-code module missing"),
        ("attacker/repo--modeling_x.Model", "remote code from another repository"),
        ("../../tmp/x.Model", "remote-code reference with an unusual module name"),
    ],
    ids=["missing", "other-repo", "path"],
)
def test_remote_code_references(tmp_path: Path, ref: str, title: str) -> None:
    r = _scan(tmp_path, "config.json", F.remote_code_config(ref))
    assert r.verdict is Verdict.SUSPICIOUS and title in _titles(r), r.hits


def test_remote_code_inside_a_zipped_repository(tmp_path: Path) -> None:
    data = F.zip_of({"repo/config.json": F.remote_code_config("modeling_gone.M")})
    r = _scan(tmp_path, "repo.zip", data)
    assert "remote-code module missing" in _titles(r)
    data = F.zip_of(
        {
            "repo/config.json": F.remote_code_config("modeling_x.M"),
            "repo/modeling_x.py": b"import os\nos.system('id')\n",
        }
    )
    r = _scan(tmp_path, "repo2.zip", data)
    assert r.verdict is Verdict.MALICIOUS and "remote-code module missing" not in _titles(r)


def _safetensors(meta: dict[str, str]) -> bytes:
    header = json.dumps(
        {"__metadata__": meta, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    ).encode()
    return struct.pack("<Q", len(header)) + header + b"\0\0\0\0"


def test_code_like_metadata_is_a_low_signal(tmp_path: Path) -> None:
    r = _scan(tmp_path, "m.safetensors", _safetensors({"format": "pt", "note": "import os; os.system('id')"}))
    assert r.verdict is Verdict.SAFE
    assert [h.severity for h in r.hits if h.title == "code-like text in metadata"] == [Severity.LOW]
    r = _scan(tmp_path, "b.safetensors", _safetensors({"format": "pt", "license": "apache-2.0"}))
    assert r.verdict is Verdict.SAFE and not r.hits
    onnx = require("onnx", "test")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    model.metadata_props.add(key="postprocess", value="__import__('subprocess').run(['id'])")
    model.doc_string = "exec(payload)"
    onnx.save_model(model, tmp_path / "m.onnx")
    r = scan_file(tmp_path / "m.onnx")
    assert r.verdict is Verdict.SAFE
    assert {h.callable for h in r.hits if h.title == "code-like text in metadata"} == {
        "postprocess",
        "doc_string",
    }


# -- 8. 7-Zip ------------------------------------------------------------------------------------------------


@pytest.fixture
def py7zr() -> Any:
    return require("py7zr", "scan")


def test_sevenzip_members_are_scanned(tmp_path: Path, py7zr: Any) -> None:
    r = _scan(
        tmp_path, "m.7z", F.sevenzip({"weights/data.pkl": F.MALICIOUS_PICKLE, "README.md": b"# model\n"})
    )
    assert r.format == "7z" and r.verdict is Verdict.MALICIOUS
    assert any(h.entry == "weights/data.pkl" for h in r.hits)
    r = _scan(tmp_path, "b.7z", F.sevenzip({"weights/data.pkl": F.BENIGN_PICKLE, "README.md": b"# model\n"}))
    assert r.format == "7z" and r.verdict is Verdict.SAFE, r.hits


def test_sevenzip_traversal_and_links(tmp_path: Path, py7zr: Any) -> None:
    data = F.sevenzip_renamed(
        {"xx/evil.pkl": F.BENIGN_PICKLE, "ok.pkl": F.BENIGN_PICKLE}, {"xx/evil.pkl": "../evil.pkl"}
    )
    r = _scan(tmp_path, "t.7z", data)
    assert r.verdict is Verdict.SUSPICIOUS and "7-Zip entry escapes the extraction directory" in _titles(r)
    r = _scan(tmp_path, "l.7z", F.sevenzip_symlink("/etc/passwd"))
    assert r.verdict is Verdict.SUSPICIOUS and "symbolic link in 7-Zip archive" in _titles(r)


@pytest.mark.parametrize("encrypted_header", [False, True])
def test_sevenzip_encrypted_is_not_safe(tmp_path: Path, py7zr: Any, encrypted_header: bool) -> None:
    import io

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password="secret") as z:
        z.set_encrypted_header(encrypted_header)
        z.writestr(F.MALICIOUS_PICKLE, "data.pkl")
    r = _scan(tmp_path, "enc.7z", buf.getvalue())
    assert r.verdict is Verdict.SUSPICIOUS, r.hits


def test_sevenzip_nested_in_gzip(tmp_path: Path, py7zr: Any) -> None:
    import gzip

    r = _scan(tmp_path, "m.7z.gz", gzip.compress(F.sevenzip({"data.pkl": F.MALICIOUS_PICKLE})))
    assert r.verdict is Verdict.MALICIOUS


@pytest.mark.timeout(60)
def test_sevenzip_bomb_is_stopped(tmp_path: Path, py7zr: Any) -> None:
    import io

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", filters=[{"id": py7zr.FILTER_BZIP2}]) as z:
        z.writestr(bytes(80 << 20), "big.bin")  # 80 MiB of zeros in a few hundred bytes
    t0 = time.monotonic()
    r = _scan(tmp_path, "bomb.7z", buf.getvalue())
    assert r.verdict is Verdict.SUSPICIOUS and "decompression bomb" in _titles(r), r.hits
    assert time.monotonic() - t0 < 30
    # a per-member cap is enforced on the bytes as they arrive, not on the declared size
    r = _scan(tmp_path, "c.7z", F.sevenzip({"a.bin": bytes(3 << 20)}), limits=ScanLimits(max_spool=1 << 20))
    assert r.verdict is Verdict.ERROR and any("expands past" in h.detail for h in r.hits)


def test_sevenzip_without_py7zr_is_suspicious_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_py7zr(name: str, *args: Any, **kw: Any) -> Any:
        if name == "py7zr" or name.startswith("py7zr."):
            raise ImportError("No module named 'py7zr'")
        return real_import(name, *args, **kw)

    data = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(100)
    monkeypatch.setattr(builtins, "__import__", no_py7zr)
    r = _scan(tmp_path, "m.7z", data)
    monkeypatch.undo()
    assert r.verdict is Verdict.SUSPICIOUS
    assert any("mlsecops[scan]" in h.detail for h in r.hits), r.hits
