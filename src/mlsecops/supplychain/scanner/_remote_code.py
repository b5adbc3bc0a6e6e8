"""Code reached through model configuration: chat templates, ``auto_map`` remote code, code-like metadata.

- ``tokenizer_config.json`` / ``chat_template.json`` ``chat_template`` (a string, or a list of
  ``{"name", "template"}``) is judged by ``_templates``.
- ``auto_map`` (``config.json``, ``tokenizer_config.json``, ``processor_config.json``...) and
  ``custom_pipelines`` name ``module.Class`` references that ``trust_remote_code=True`` imports from
  the repository (``module.py``) or from another repository (``repo--module.Class``). The module itself
  is scanned as Python source when it is part of what was scanned; a reference to a module that is
  missing, that lives in another repository, or whose name leaves the repository is suspicious: the
  code that would run was not inspected.
- Free-text metadata (safetensors ``__metadata__``, ONNX ``metadata_props`` and doc strings) cannot run
  by itself; code in it is a low-severity signal.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._io import Stream
from mlsecops.supplychain.scanner._pysource import MAX_SOURCE, looks_like_python, scan_python_source
from mlsecops.supplychain.scanner._templates import MAX_TEMPLATE, analyze_template, scan_template
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["HasFile", "looks_like_code", "scan_config_code", "scan_metadata_text", "scan_text_code"]

Report = Callable[[Hit], None]
HasFile = Callable[[str], bool | None]
"""Whether a file (relative to the configuration's directory) exists; ``None`` when it cannot be known."""

MAX_REFERENCES = 256
"""``auto_map`` references judged per configuration."""
MAX_METADATA_TEXT = 1 << 20
"""Longest metadata value searched for code."""

_MODULE_REF = re.compile(
    r"^(?:(?P<repo>[\w.\-]+/[\w.\-]+|[\w.\-]+)--)?(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$"
)
_CODE_LIKE = re.compile(
    r"\bimport\s+(os|subprocess|socket|sys|pty|ctypes|base64|pickle|marshal|shutil|requests)\b"
    r"|\bfrom\s+(os|subprocess|socket|pty|ctypes)\s+import\b|__import__\s*\(|\bos\.(system|popen|exec\w*)\s*\("
    r"|\bsubprocess\.\w+\s*\(|\b(eval|exec)\s*\(|/bin/(ba)?sh\b|\bcurl\s+\S+\s*\|\s*(ba)?sh|\bpowershell\b"
    r"|\b(pickle|marshal)\.loads?\s*\(|__(class|globals|builtins|subclasses)__",
    re.IGNORECASE,
)
_TEMPLATE_KEYS = ("chat_template",)


def _hit(sev: Severity, title: str, detail: str, entry: str, name: str | None, kind: str = "config") -> Hit:
    return Hit(
        sev,
        title,
        detail,
        kind=kind,
        entry=entry,
        callable=name,
        atlas=ATLAS_ARTIFACT if sev >= Severity.MEDIUM else None,
        remediation="Review the referenced code; load without trust_remote_code where possible.",
    )


def scan_config_code(config: object, *, entry: str, report: Report, has_file: HasFile | None = None) -> None:
    """Judge the chat templates and remote-code references of one decoded JSON configuration."""
    if not isinstance(config, dict):
        return
    for key in _TEMPLATE_KEYS:
        value = config.get(key)
        if isinstance(value, str):
            scan_template(value, where=key, entry=entry, report=report, kind="template")
        elif isinstance(value, list):
            for i, item in enumerate(value[:MAX_REFERENCES]):
                if isinstance(item, dict) and isinstance(item.get("template"), str):
                    where = f"{key}[{item.get('name', i)!s:.40}]"
                    scan_template(item["template"], where=where, entry=entry, report=report, kind="template")
                elif isinstance(item, str):
                    scan_template(item, where=f"{key}[{i}]", entry=entry, report=report, kind="template")
    refs: list[tuple[str, str]] = []
    auto_map = config.get("auto_map")
    if isinstance(auto_map, dict):
        for k, v in auto_map.items():
            vals = v if isinstance(v, list) else [v]
            refs.extend((f"auto_map.{k}", x) for x in vals if x is not None)
    pipelines = config.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for k, v in pipelines.items():
            if isinstance(v, dict):
                for fw in ("impl", "pt", "tf"):
                    if v.get(fw) is not None:
                        refs.append((f"custom_pipelines.{k}.{fw}", v[fw]))
    seen: set[str] = set()
    for where, ref in refs[:MAX_REFERENCES]:
        _reference(where, ref, entry, report, has_file, seen)


def _reference(
    where: str, ref: object, entry: str, report: Report, has_file: HasFile | None, seen: set[str]
) -> None:
    if not isinstance(ref, str):
        report(
            _hit(Severity.MEDIUM, "malformed remote-code reference", f"{where} = {ref!r:.120}", entry, None)
        )
        return
    m = _MODULE_REF.match(ref)
    if m is None or "." not in m.group("module"):
        report(
            _hit(
                Severity.HIGH,
                "remote-code reference with an unusual module name",
                f"{where} = {ref!r:.200}: not a module.Class name; a loader joining it to a path may leave the "
                "repository",
                entry,
                ref[:200],
            )
        )
        return
    module = m.group("module").rsplit(".", 1)[0]
    if m.group("repo"):
        if ref not in seen:
            seen.add(ref)
            report(
                _hit(
                    Severity.MEDIUM,
                    "remote code from another repository",
                    f"{where} = {ref!r}: trust_remote_code downloads and runs {module}.py from "
                    f"{m.group('repo')!r}, which was not scanned",
                    entry,
                    ref,
                )
            )
        return
    fname = module.replace(".", "/") + ".py"
    if fname in seen:
        return
    seen.add(fname)
    exists = has_file(fname) if has_file is not None else None
    if exists is False:
        report(
            _hit(
                Severity.MEDIUM,
                "remote-code module missing",
                f"{where} = {ref!r}: trust_remote_code would import {fname}, which is not beside the "
                "configuration; it would come from elsewhere and was not scanned",
                entry,
                ref,
            )
        )
    else:
        report(
            _hit(
                Severity.LOW,
                "configuration runs remote code",
                f"{where} = {ref!r}: loading with trust_remote_code=True imports {fname}"
                + (" (scanned as its own file)" if exists else ""),
                entry,
                ref,
            )
        )


def looks_like_code(text: str) -> str | None:
    """The code-like fragment of free text, if any."""
    m = _CODE_LIKE.search(text[:MAX_METADATA_TEXT])
    return m.group(0) if m else None


def scan_metadata_text(key: str, value: str, *, entry: str, report: Report, kind: str) -> None:
    """Report code-like text in one metadata value (low severity: metadata is not run by loaders)."""
    frag = looks_like_code(value)
    if frag is None:
        return
    report(
        Hit(
            Severity.LOW,
            "code-like text in metadata",
            f"metadata {key[:80]!r} contains {frag[:80]!r}; loaders do not run it, but a tool that evaluates "
            "metadata would",
            kind=kind,
            entry=entry,
            callable=key[:200],
            atlas=None,
        )
    )


class _Chain:
    """A forward reader that replays ``head`` and then continues with ``rest``."""

    def __init__(self, head: bytes, rest: Stream) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int) -> bytes:
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._rest.read(n)


def scan_text_code(s: Stream, *, entry: str, report: Report, printable: bool = True) -> Stream:
    """Judge text that is Python source (a remote-code module) or a Jinja template (``chat_template.jinja``).

    Text up to ``MAX_SOURCE`` bytes with an import, ``def`` or ``class`` line anywhere in it (a module
    padded with 100 KB of comments still imports) is offered to Python's parser; other text (vocabulary
    lists parse as Python too, slowly) only to the template check. Non-printable bytes are read only
    when their first 64 KiB have such a line. A seekable stream is left where it was, a forward one is replaced by an equivalent
    stream (returned), so the caller can go on with its own search.
    """
    start = s.tell()
    head = s.peek(64 << 10)
    hinted = looks_like_python(head)
    # Text that opens with a letter pickle protocol 1 also opens with ("Hello", "You are") reaches us as
    # "unknown" after the pickle walk gave up on it.
    printable = printable or (bool(head) and not any(b < 9 or 13 < b < 32 or b == 127 for b in head[:4096]))
    if not printable and not hinted:
        return s
    data = s.read(MAX_SOURCE + 1)
    if s.seekable:
        s.seek(start)
        out = s
    else:
        out = Stream(_Chain(data, s), s.budget, size=s.size)
    if len(data) > MAX_SOURCE:
        if hinted:
            report(
                _hit(
                    Severity.MEDIUM,
                    "code-like text too large to inspect",
                    f"more than {MAX_SOURCE} bytes of what looks like Python source",
                    entry,
                    None,
                )
            )
        return out
    if (hinted or (printable and looks_like_python(data))) and scan_python_source(
        data, entry=entry, report=report
    ):
        return out
    if b"{%" in data or b"{{" in data:
        text = data.decode("utf-8", "replace")
        if len(text) <= MAX_TEMPLATE:
            issues = [i for i in analyze_template(text) if i.severity >= Severity.MEDIUM]
            if issues:
                scan_template(text, where="template text", entry=entry, report=report, kind="template")
    return out
