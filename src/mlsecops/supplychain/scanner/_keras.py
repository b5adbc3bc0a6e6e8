"""Keras model configurations: ``.keras`` zips (``config.json``) and HDF5 ``.h5`` files (``model_config``).

A Keras configuration carries code in two ways: ``Lambda`` layers (the function is serialised as
base64 marshal bytecode, run on load in older Keras and whenever ``safe_mode`` is off), and objects
whose ``module``/``class_name`` Keras imports while deserialising (arbitrary imports through
``config.json`` were the CVE-2025-1550 ``safe_mode`` bypass). Custom objects (``registered_name`` outside
Keras) need user code and are reported as unknown.

For ``.h5`` we do not use h5py (the HDF5 C library parsing a hostile file is an attack surface of its
own): ``_hdf5`` reads the root group's ``model_config`` and ``training_config`` attributes from the file
format, as Keras does. Where that reader cannot follow the file (attributes in dense storage), we
search the bytes for JSON objects, in any key order, and parse them with ``json`` (which builds plain
data only), and say so in an info finding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._hdf5 import Hdf5Unsupported, root_string_attributes
from mlsecops.supplychain.scanner._io import CHUNK, Stream
from mlsecops.supplychain.scanner._policy import Rule, judge
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["HDF5_MAGIC", "scan_h5", "scan_keras_config"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

_REMEDIATION = (
    "Load with keras.saving.load_model(..., safe_mode=True) only after review, or rebuild the "
    "architecture in code and load the weights alone."
)
_KERAS_MODULES = (
    "keras",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
    "keras_nlp",
    "keras_hub",
)


def _hit(
    report: Callable[[Hit], None], sev: Severity, title: str, detail: str, entry: str, name: str | None
) -> None:
    report(
        Hit(
            sev,
            title,
            detail,
            kind="keras",
            entry=entry,
            callable=name,
            atlas=ATLAS_ARTIFACT,
            remediation=_REMEDIATION,
        )
    )


def scan_keras_config(config: object, *, entry: str, report: Callable[[Hit], None]) -> int:
    """Walk a decoded Keras configuration and report code-carrying layers and imports.

    Returns:
        Number of layer-like objects seen.
    """
    seen = 0
    stack: list[tuple[object, int]] = [(config, 0)]
    reported: set[str] = set()
    while stack:
        node, depth = stack.pop()
        if depth > 200:
            _hit(report, Severity.MEDIUM, "Keras configuration nested too deep", "", entry, None)
            break
        if isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend((v, depth + 1) for v in node.values())
        cls = node.get("class_name")
        if node.get("function_type") == "lambda" and "lambda-function" not in reported:
            # Keras 2 stores a Lambda's bytecode beside "function_type": whatever the class is called.
            reported.add("lambda-function")
            _hit(
                report,
                Severity.CRITICAL,
                "Keras Lambda function",
                "a serialised lambda (marshal bytecode) is part of the configuration",
                entry,
                "keras.layers.Lambda",
            )
        if not isinstance(cls, str):
            continue
        seen += 1
        module = node.get("module")
        cfg = node.get("config") if isinstance(node.get("config"), dict) else {}
        assert isinstance(cfg, dict)
        if cls in ("Lambda", "__lambda__") or (cls == "function" and "code" in cfg):
            key = f"lambda:{cfg.get('name', '')}"
            if key not in reported:
                reported.add(key)
                _hit(
                    report,
                    Severity.CRITICAL,
                    "Keras Lambda layer",
                    f"layer {cfg.get('name', '?')!r} is a Lambda: its function is serialised bytecode that "
                    "runs when the model is loaded or called",
                    entry,
                    "keras.layers.Lambda",
                )
            continue
        if cls in _TF_OP_LAMBDAS:
            _tf_op(cfg, entry, report, reported)
            continue
        if isinstance(module, str) and _is_keras_module(module) and cls == "function":
            _keras_function(module, node.get("config"), entry, report, reported)
            continue
        if isinstance(module, str) and module and not _is_keras_module(module):
            # Keras 3 serialises a plain function as {"module": m, "class_name": "function", "config": name}.
            j = judge(
                module,
                str(node["config"]) if cls == "function" and isinstance(node.get("config"), str) else cls,
            )
            if j.name in reported:
                continue
            reported.add(j.name)
            if j.rule is Rule.DENY:
                _hit(
                    report,
                    Severity.CRITICAL,
                    f"Keras configuration imports {j.name}",
                    f"deserialising imports {j.name} ({j.reason}) and calls it with the stored config",
                    entry,
                    j.name,
                )
            elif j.rule is Rule.UNKNOWN:
                _hit(
                    report,
                    Severity.MEDIUM,
                    f"Keras custom object {j.name}",
                    f"deserialising imports {j.name}, code outside Keras",
                    entry,
                    j.name,
                )
            continue
        reg = node.get("registered_name")
        if (
            isinstance(reg, str)
            and reg
            and reg != cls
            and not reg.startswith("keras")
            and reg not in reported
        ):
            reported.add(reg)
            _hit(
                report,
                Severity.MEDIUM,
                f"Keras custom object {reg}",
                f"layer class {reg!r} is registered by user code that loading needs",
                entry,
                reg,
            )
    return seen


def _is_keras_module(module: str) -> bool:
    """Whether ``module`` is inside a Keras package (``keras_evil`` is not ``keras``)."""
    return any(module == k or module.startswith(k + ".") for k in _KERAS_MODULES)


# Keras functions that a configuration can name and that act outside the model: downloads and file
# writes (keras.utils.get_file, the CVE-2025-8747 safe_mode bypass), the safe_mode switch itself
# (CVE-2025-9906), nested loading. Numeric functions (activations, losses, initializers) are fine.
_KERAS_FN_DENY = re.compile(
    r"(get_file|enable_unsafe_deserialization|load_model|load_weights|model_from_|deserialize|"
    r"register_keras_serializable|set_|file_utils|io_utils|saving|download|\bexec|\beval|system)"
)
_KERAS_FN_OK = re.compile(
    r"\.(activations|losses|metrics|initializers|regularizers|constraints|ops|optimizers|layers|"
    r"applications|random|backend)(\.|$)"
)
_TF_OP_LAMBDAS = ("TFOpLambda", "SlicingOpLambda")
# TensorFlow symbols a TFOpLambda may call that touch files, run Python or reach the raw op registry.
_TF_OP_DENY = re.compile(
    r"(^|\.)(io|gfile|raw_ops|py_function|numpy_function|py_func|saved_model|summary|debugging|"
    r"print|autograph|compat\.v1\.(io|gfile|py_func)|data\.experimental|distribute|keras\.utils)(\.|$)"
)


def _keras_function(
    module: str, name: object, entry: str, report: Callable[[Hit], None], reported: set[str]
) -> None:
    full = f"{module}.{name}" if isinstance(name, str) else module
    if full in reported:
        return
    reported.add(full)
    if _KERAS_FN_DENY.search(full):
        _hit(
            report,
            Severity.CRITICAL,
            f"Keras configuration calls {full}",
            f"deserialising calls {full}, a Keras function that acts outside the model (download, file "
            "write, safe_mode switch or nested loading)",
            entry,
            full,
        )
    elif not _KERAS_FN_OK.search(module + "."):
        _hit(
            report,
            Severity.MEDIUM,
            f"Keras function {full}",
            f"deserialising references {full}, outside Keras' numeric modules",
            entry,
            full,
        )


def _tf_op(cfg: dict[str, object], entry: str, report: Callable[[Hit], None], reported: set[str]) -> None:
    fn = cfg.get("function")
    fn_name = fn if isinstance(fn, str) else repr(fn)[:80]
    if fn_name in reported:
        return
    reported.add(fn_name)
    if not isinstance(fn, str) or _TF_OP_DENY.search(fn):
        _hit(
            report,
            Severity.CRITICAL,
            f"TFOpLambda calls tf.{fn_name}",
            f"a TFOpLambda layer calls tf.{fn_name} when the model runs; that symbol reads or writes files "
            "or runs Python",
            entry,
            f"tensorflow.{fn_name}",
        )


def scan_h5(s: Stream, *, entry: str, report: Callable[[Hit], None], max_search: int) -> None:
    """Judge the Keras configurations of an HDF5 file: parsed root attributes, else a text search."""
    if s.region is not None:
        try:
            attrs = root_string_attributes(s.region)
        except Hdf5Unsupported as err:
            report(
                Hit(
                    Severity.INFO,
                    "HDF5 attributes searched as text",
                    f"{err}; the file's bytes were searched for Keras configurations instead",
                    kind="keras",
                    entry=entry,
                    atlas=None,
                )
            )
        else:
            _judge_attributes(attrs, entry, report)
            return
    _search_h5(s, entry=entry, report=report, max_search=max_search)


def _judge_attributes(
    attrs: list[tuple[str, str | bytes | None]], entry: str, report: Callable[[Hit], None]
) -> None:
    seen = False
    for key, value in attrs:
        if key not in ("model_config", "training_config") or value is None:
            continue
        seen = True
        where = f"{entry}@{key}" if entry else f"@{key}"
        try:
            cfg = json.loads(value)
        except (ValueError, RecursionError):
            report(Hit(Severity.LOW, f"unparsable {key}", "", kind="keras", entry=where, atlas=None))
            continue
        scan_keras_config(cfg, entry=where, report=report)
    if not seen:
        report(
            Hit(
                Severity.INFO,
                "no Keras configuration in HDF5 file",
                "the root group has no model_config attribute; weights-only files look like this",
                kind="keras",
                entry=entry,
                atlas=None,
            )
        )


# Any JSON object start: the keys of a configuration may come in any order ('{"config": ...').
_OBJECT_START = re.compile(rb'\{\s*"')


def _search_h5(s: Stream, *, entry: str, report: Callable[[Hit], None], max_search: int) -> None:
    """Search an HDF5 file's bytes for JSON objects and judge each one (when parsing was not possible)."""
    found = 0
    carry = b""
    pos = 0
    decoder = json.JSONDecoder()
    while pos < max_search:
        chunk = s.read(CHUNK * 4)
        if not chunk:
            break
        buf = carry + chunk
        base = pos - len(carry)
        pos += len(chunk)
        i = 0
        while True:
            m = _OBJECT_START.search(buf, i)
            if m is None:
                break
            j = m.start()
            if len(buf) - j < 1 << 20 and not s.at_eof():
                # Make sure a whole configuration (up to 16 MB) is in memory before decoding it.
                more = s.read(16 << 20)
                pos += len(more)
                buf = buf + more
            obj, used = _decode_at(decoder, buf, j)
            if obj is None:
                i = j + 1
                continue
            found += 1
            scan_keras_config(obj, entry=f"{entry}@{base + j}" if entry else f"@{base + j}", report=report)
            i = j + max(used, 1)
            if found > 64:
                return
        carry = buf[-64:]
    if not found:
        report(
            Hit(
                Severity.INFO,
                "no Keras configuration found in HDF5 file",
                "the file holds no model_config JSON we could see; weights-only files look like this",
                kind="keras",
                entry=entry,
                atlas=None,
            )
        )


def _decode_at(decoder: json.JSONDecoder, buf: bytes, j: int) -> tuple[object, int]:
    """Decode one JSON object at ``buf[j]``: a 4 KiB window first, the rest only when it ran out."""
    for window in (4096, 16 << 20):
        text = buf[j : j + window].decode("utf-8", "replace")
        try:
            obj, used = decoder.raw_decode(text)
        except json.JSONDecodeError as err:
            if err.pos < len(text) - 1 or len(text) < window:
                return None, 0
            continue
        except (ValueError, RecursionError):
            return None, 0
        return (
            (obj, len(text[:used].encode("utf-8", "surrogatepass"))) if isinstance(obj, dict) else (None, 0)
        )
    return None, 0
