"""Issue 17 format-side samples: TensorFlow SavedModel and Keras v2 metadata, TFLite, Keras 3 archives that
embed code, Jinja2 chat templates, remote code named by ``auto_map``, 7-Zip archives.

Shape of every ``corpus_*17.py`` module (see ``corpus_pickle17.py``): ``write_samples(root)`` writes each
file to ``root/<label>/<format>/<name>`` and returns one record per file. Every malicious sample has a
benign twin of the same format. The bytes come from ``tests/_formats17.py``, shared with the regression
tests (``tests/regressions/test_scanner_format_classes.py``); nothing here needs TensorFlow.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# the repository root, for tests/_formats17.py (the builders shared with the regression tests)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from corpus import Sample  # the benchmark directory is not a package
from tests import _formats17 as F

ROOT = Path(__file__).resolve().parents[2]


def _put(root: Path, out: list[Sample], rel: str, data: bytes, label: str, fmt: str, technique: str) -> None:
    path = root / label / fmt / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    out.append({"path": str(path.relative_to(root)), "label": label, "format": fmt, "technique": technique})


def _savedmodel(root: Path, out: list[Sample]) -> None:
    group = F.varint(99 << 3 | 3) + F.field(1, 5) + F.varint(99 << 3 | 4)
    hidden = F.field(1, 1) + F.field(2, group + F.field(2, group + F.field(1, F.node_def("w", "WriteFile"))))
    bad = {
        "graph-writefile": F.saved_model(["WriteFile"]),
        "function-readfile": F.saved_model(functions={"__inference_call_7": ["MatMul", "ReadFile"]}),
        "eager-pyfunc": F.saved_model(functions={"__inference_call_7": ["EagerPyFunc"]}),
        "matching-files": F.saved_model(functions={"__inference_call_7": ["MatchingFiles", "ReadFile"]}),
        "debug-writer": F.saved_model(functions={"__inference_call_7": ["DebugIdentityV2"]}),
        "printv2-to-file": F.saved_model(
            graph_nodes=[F.node_def("p", "PrintV2", {"output_stream": "file:///home/user/.bashrc"})]
        ),
        "asset-traversal": F.saved_model(assets=["../../../../etc/passwd"]),
        "object-graph-keras-lambda": F.saved_model(keras_metadata=[F.KERAS2_DENSE, F.KERAS2_LAMBDA]),
        "unknown-group-hides-graph": hidden,
    }
    for name, data in bad.items():
        _put(root, out, f"{name}/saved_model.pb", data, "malicious", "tf-savedmodel", name)
    good = {
        "serving-and-saver": F.saved_model(["Placeholder"]),
        "keras-dense": F.saved_model(keras_metadata=[F.KERAS2_DENSE, F.KERAS2_DENSE]),
    }
    for name, data in good.items():
        _put(root, out, f"{name}/saved_model.pb", data, "benign", "tf-savedmodel", name)
    _put(
        root,
        out,
        "frozen/frozen_graph.pb",
        F.frozen_graph(["Placeholder", "MatMul", "WriteFile"]),
        "malicious",
        "tf-savedmodel",
        "frozen-graph-writefile",
    )
    _put(
        root,
        out,
        "pbtxt/saved_model.pbtxt",
        F.saved_model_text(["Placeholder", "ReadFile"]),
        "malicious",
        "tf-savedmodel",
        "pbtxt-readfile",
    )
    _put(
        root,
        out,
        "frozen-ok/frozen_graph.pb",
        F.frozen_graph(["Placeholder", "MatMul", "Relu"]),
        "benign",
        "tf-savedmodel",
        "frozen-graph",
    )
    _put(
        root,
        out,
        "pbtxt-ok/saved_model.pbtxt",
        F.saved_model_text(["Placeholder", "MatMul", "SaveV2"]),
        "benign",
        "tf-savedmodel",
        "pbtxt",
    )
    custom = F.keras2_layer("Custom>Exfiltrate", {"units": 2})
    _put(
        root,
        out,
        "lambda/keras_metadata.pb",
        F.keras_metadata_pb([F.KERAS2_DENSE, F.KERAS2_LAMBDA]),
        "malicious",
        "keras-metadata",
        "keras2-lambda",
    )
    _put(
        root,
        out,
        "custom/keras_metadata.pb",
        F.keras_metadata_pb([F.KERAS2_DENSE, custom]),
        "malicious",
        "keras-metadata",
        "keras2-custom-object",
    )
    _put(
        root,
        out,
        "dense/keras_metadata.pb",
        F.keras_metadata_pb([F.KERAS2_DENSE, F.KERAS2_DENSE]),
        "benign",
        "keras-metadata",
        "keras2-dense",
    )


def _tflite(root: Path, out: list[Sample]) -> None:
    c = F.BUILTIN_CUSTOM
    bad = {
        "flex-writefile": [(F.BUILTIN_CONV_2D, ""), (c, "FlexWriteFile")],
        "flex-readfile": [(c, "FlexReadFile")],
        "flex-eagerpyfunc": [(c, "FlexEagerPyFunc")],
        "unknown-custom-op": [(F.BUILTIN_FULLY_CONNECTED, ""), (c, "Unknown_Native_Op")],
    }
    good = {
        "builtins": [(F.BUILTIN_CONV_2D, ""), (F.BUILTIN_FULLY_CONNECTED, "")],
        "detection-postprocess": [(F.BUILTIN_CONV_2D, ""), (c, "TFLite_Detection_PostProcess")],
        "flex-rfft": [(c, "FlexRFFT")],
    }
    for name, ops in bad.items():
        _put(root, out, f"{name}.tflite", F.tflite(ops), "malicious", "tflite", name)
    model = F.tflite([(F.BUILTIN_CONV_2D, "")])
    labels = F.zip_of({"labels.txt": b"cat\ndog\n"})
    _put(root, out, "metadata-zip.tflite", model + labels, "benign", "tflite", "metadata-associated-files")
    evil = F.zip_of({"labels.txt": b"cat\n", "x.pkl": F.MALICIOUS_PICKLE})
    _put(root, out, "metadata-zip-pickle.tflite", model + evil, "malicious", "tflite", "metadata-zip-pickle")
    for name, ops in good.items():
        _put(root, out, f"{name}.tflite", F.tflite(ops), "benign", "tflite", name)


def _keras3(root: Path, out: list[Sample]) -> None:
    bad = {
        "embedded-savedmodel": {"assets/saved_model.pb": F.saved_model(["WriteFile"])},
        "embedded-pickle": {"assets/state.bin": F.MALICIOUS_PICKLE},
        "embedded-keras-metadata": {"assets/keras_metadata.pb": F.keras_metadata_pb([F.KERAS2_LAMBDA])},
    }
    for name, extra in bad.items():
        _put(
            root, out, f"{name}.keras", F.keras3(F.KERAS3_DENSE, extra), "malicious", "keras3-embedded", name
        )
    benign = {"assets/saved_model.pb": F.saved_model(), "assets/state.bin": F.BENIGN_PICKLE}
    _put(
        root,
        out,
        "dense-with-assets.keras",
        F.keras3(F.KERAS3_DENSE, benign),
        "benign",
        "keras3-embedded",
        "dense-with-assets",
    )


def _templates(root: Path, out: list[Sample]) -> None:
    for name, tpl in F.SSTI_TEMPLATES.items():
        _put(
            root,
            out,
            f"{name}/tokenizer_config.json",
            F.tokenizer_config(tpl),
            "malicious",
            "chat-template",
            f"tokenizer-config-{name}",
        )
    for name in ("attr-concat", "format-chars", "template-reference"):
        tpl = F.SSTI_TEMPLATES[name]
        _put(
            root,
            out,
            f"jinja-{name}/chat_template.jinja",
            tpl.encode(),
            "malicious",
            "chat-template",
            f"jinja-{name}",
        )
        _put(
            root,
            out,
            f"gguf-{name}.gguf",
            F.gguf({"general.name": "m", "tokenizer.chat_template": tpl}),
            "malicious",
            "chat-template",
            f"gguf-{name}",
        )
    listed = [
        {"name": "default", "template": F.CHATML_TEMPLATE},
        {"name": "rag", "template": F.SSTI_TEMPLATES["dict-keys"]},
    ]
    _put(
        root,
        out,
        "template-list/tokenizer_config.json",
        F.tokenizer_config(listed),
        "malicious",
        "chat-template",
        "tokenizer-config-template-list",
    )
    for name, tpl in F.BENIGN_TEMPLATES.items():
        _put(
            root,
            out,
            f"{name}/tokenizer_config.json",
            F.tokenizer_config(tpl),
            "benign",
            "chat-template",
            f"tokenizer-config-{name}",
        )
        _put(
            root,
            out,
            f"jinja-{name}/chat_template.jinja",
            tpl.encode(),
            "benign",
            "chat-template",
            f"jinja-{name}",
        )
        _put(
            root,
            out,
            f"gguf-{name}.gguf",
            F.gguf({"general.name": "m", "tokenizer.chat_template": tpl}),
            "benign",
            "chat-template",
            f"gguf-{name}",
        )
    mention = (
        "{{ 'You explain Python: import statements, __init__.py files, eval loops.' }}" + F.CHATML_TEMPLATE
    )
    _put(
        root,
        out,
        "mentions-import/tokenizer_config.json",
        F.tokenizer_config(mention),
        "benign",
        "chat-template",
        "tokenizer-config-mentions-code",
    )


def _remote_code(root: Path, out: list[Sample]) -> None:
    for name, src in F.MALICIOUS_MODELING.items():
        _put(
            root,
            out,
            f"{name}/modeling_custom.py",
            src.encode(),
            "malicious",
            "remote-code",
            f"module-{name}",
        )
    _put(
        root,
        out,
        "missing-module/config.json",
        F.remote_code_config("modeling_gone.Model"),
        "malicious",
        "remote-code",
        "auto-map-missing-module",
    )
    _put(
        root,
        out,
        "other-repo/config.json",
        F.remote_code_config("attacker/repo--modeling_x.Model"),
        "malicious",
        "remote-code",
        "auto-map-other-repository",
    )
    _put(
        root,
        out,
        "tiny/modeling_tiny.py",
        F.BENIGN_MODELING.encode(),
        "benign",
        "remote-code",
        "module-benign",
    )
    _put(
        root,
        out,
        "tiny/config.json",
        F.remote_code_config("modeling_tiny.TinyModel"),
        "benign",
        "remote-code",
        "auto-map-present-module",
    )


def _sevenzip(root: Path, out: list[Sample]) -> None:
    import io

    import py7zr

    bad = {
        "pickle-inside": F.sevenzip({"weights/data.pkl": F.MALICIOUS_PICKLE, "README.md": b"# model\n"}),
        "traversal-name": F.sevenzip_renamed(
            {"xx/evil.pkl": F.BENIGN_PICKLE, "ok.pkl": F.BENIGN_PICKLE}, {"xx/evil.pkl": "../evil.pkl"}
        ),
        "symlink": F.sevenzip_symlink("/etc/passwd"),
        "template-inside": F.sevenzip(
            {"tokenizer_config.json": F.tokenizer_config(F.SSTI_TEMPLATES["replace"])}
        ),
    }
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", filters=[{"id": py7zr.FILTER_BZIP2}]) as z:
        z.writestr(bytes(80 << 20), "big.bin")
    bad["bomb"] = buf.getvalue()
    for name, data in bad.items():
        _put(root, out, f"{name}.7z", data, "malicious", "7z", name)
    good = {
        "pickle-inside": F.sevenzip({"weights/data.pkl": F.BENIGN_PICKLE, "README.md": b"# model\n"}),
        "repo-inside": F.sevenzip(
            {
                "tokenizer_config.json": F.tokenizer_config(F.LLAMA3_TEMPLATE),
                "notes.txt": b"weights in fp16\n",
            }
        ),
    }
    for name, data in good.items():
        _put(root, out, f"{name}.7z", data, "benign", "7z", name)


def write_samples(root: Path) -> list[Sample]:
    """Write the samples under ``root`` and return their records."""
    out: list[Sample] = []
    _savedmodel(root, out)
    _tflite(root, out)
    _keras3(root, out)
    _templates(root, out)
    _remote_code(root, out)
    try:
        _sevenzip(root, out)
    except ImportError:  # py7zr is the 'scan' extra
        print("py7zr missing: 7-Zip samples skipped (pip install 'mlsecops[scan]')", file=sys.stderr)
    return out


if __name__ == "__main__":  # a quick self-check: every sample through our scanner
    import tempfile

    sys.path.insert(0, str(ROOT / "src"))
    from mlsecops.supplychain.scanner import scan_file

    with tempfile.TemporaryDirectory() as tmp:
        recs = write_samples(Path(tmp))
        bad = 0
        for rec in recs:
            v = str(scan_file(Path(tmp) / rec["path"], sha256=False).verdict)
            ok = (v != "safe") == (rec["label"] == "malicious")
            bad += not ok
            print(f"{'ok ' if ok else 'BAD'} {rec['label']:9} {v:10} {rec['path']}")
        print(f"{len(recs)} samples, {bad} wrong")
