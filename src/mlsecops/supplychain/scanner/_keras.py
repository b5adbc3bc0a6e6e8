"""Keras model configurations: ``.keras`` zips (``config.json``) and HDF5 ``.h5`` files (``model_config``).

A Keras configuration carries code in two ways: ``Lambda`` layers (the function is serialised as
base64 marshal bytecode, run on load in older Keras and whenever ``safe_mode`` is off), and objects
whose ``module``/``class_name`` Keras imports while deserialising (arbitrary imports through
``config.json`` were the CVE-2025-1550 ``safe_mode`` bypass). Custom objects (``registered_name`` outside
Keras) need user code and are reported as unknown.

For ``.h5`` we do not use h5py: the ``model_config`` attribute is stored as contiguous JSON text, so we
search the file's bytes for Keras JSON objects and parse them with ``json`` (which builds plain data
only). This is a content search, not an HDF5 parse; a configuration split across HDF5 chunks would
not be found, and we say so in an info finding when an HDF5 file holds no configuration we can see.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from mlsecops.core.severity import Severity
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
        if not isinstance(cls, str):
            if node.get("function_type") == "lambda":
                _hit(
                    report,
                    Severity.CRITICAL,
                    "Keras Lambda function",
                    "a serialised lambda (marshal bytecode) is part of the configuration",
                    entry,
                    "keras.layers.Lambda",
                )
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
        if isinstance(module, str) and module and not module.startswith(_KERAS_MODULES):
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


_MARKERS = (b'{"class_name"', b'{"module"')


def scan_h5(s: Stream, *, entry: str, report: Callable[[Hit], None], max_search: int) -> None:
    """Search an HDF5 file for Keras JSON configurations and judge each one."""
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
            hits = [j for j in (buf.find(m, i) for m in _MARKERS) if j >= 0]
            if not hits:
                break
            j = min(hits)
            text = buf[j:]
            if len(text) < 1 << 20 and not s.at_eof():
                # Make sure a whole configuration (up to 16 MB) is in memory before decoding it.
                more = s.read(16 << 20)
                pos += len(more)
                buf = buf + more
                text = buf[j:]
            try:
                obj, used = decoder.raw_decode(text.decode("utf-8", "replace"))
            except (ValueError, RecursionError):
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
