"""TorchScript ``code/`` entries, judged by parsing the source, never by pattern.

``torch.jit.load`` compiles the Python-syntax source stored under ``code/`` and runs it when the model is
called, so a spelling a pattern misses (``torch . from_file(``, line continuations, ``f = torch.from_file``,
``getattr(torch, "from_file")``) is code that runs. Each entry is parsed with ``ast`` (never compiled to
run) and every name, attribute and call is resolved the way the TorchScript importer resolves it:
``torch.X`` is the ATen operator ``X`` (``torch.autograd`` is ``torch`` again), ``ops.NS.X`` the operator
``X`` of namespace ``NS``, ``__torch__.*`` a class or function of the archive (``__torch__.torch.classes.NS``
a C++ class registered by a library), and a handful of builtins. Names bound to these references are
followed through assignments. Everything that resolves to an allow-listed operator, builtin, archive class
or method is clean; file and library operators are critical; custom namespaces and registered C++ classes
are high; anything that does not resolve cleanly (unknown names, calls of call results, unusual syntax,
undecodable or unparsable source) is medium. The allow-list is the operator table of torch 2.13
(``_torch_ops.py``), checked against real scripted and traced models by the tests.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterable

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._torch_ops import TORCH_OPS
from mlsecops.supplychain.scanner._ts_judge import FileJudge
from mlsecops.supplychain.scanner._ts_rules import BUILTIN_METHODS, Note, ts_hit
from mlsecops.supplychain.scanner._types import Hit

__all__ = ["MAX_CODE_BYTES", "MAX_CODE_TOTAL", "scan_torchscript_sources"]

Report = Callable[[Hit], None]

MAX_CODE_BYTES = 8 << 20
"""Largest ``code/`` entry parsed (its syntax tree costs ~20x its size in memory); larger ones are reported."""
MAX_CODE_TOTAL = 32 << 20
"""Source bytes parsed per archive, summed over its ``code/`` entries."""
MAX_NOTES_PER_ENTRY = 20
"""Distinct findings kept per entry; the rest are counted in one summary finding."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MAY_DIFFER = re.compile(r"""[^\x00-\x7f]|\"\"\"|'''|(?<![\w])[rRbBuUfF]{1,2}["']""")
"""Text that needs a token-level look: non-ASCII, triple quotes, or what may be a string prefix."""


def scan_torchscript_sources(
    sources: Iterable[tuple[str, bytes]], *, report: Report, tick: Callable[[], None] = lambda: None
) -> None:
    """Judge every ``code/**.py`` entry of one TorchScript archive.

    Args:
        sources: (entry path, raw bytes) of each code entry; entries already known to be too large are
            passed with their first ``MAX_CODE_BYTES + 1`` bytes and reported here.
        report: receives the hits.
        tick: called regularly; raises (``LimitReached``) to stop a scan that ran out of time.
    """
    decoded: list[tuple[str, str]] = []
    total = 0
    for entry, raw in sources:
        if len(raw) > MAX_CODE_BYTES or total + len(raw) > MAX_CODE_TOTAL:
            report(
                ts_hit(
                    Note(Severity.MEDIUM, "TorchScript source too large to inspect", "", 0),
                    entry,
                    f"more than {MAX_CODE_BYTES} bytes in one entry or {MAX_CODE_TOTAL} in the archive; "
                    "torch.jit.load would still compile all of it",
                    error=True,
                )
            )
            continue
        total += len(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            report(ts_hit(Note(Severity.MEDIUM, "TorchScript source is not UTF-8", "", 0), entry, str(err)))
            continue
        decoded.append((entry, text))
    trees: list[tuple[str, ast.Module]] = []
    defined: set[str] = set()
    for entry, text in decoded:
        tree = _parse(text, entry, report)
        if tree is None:
            continue
        for node in tree.body:  # methods are what classes and modules define
            inner = node.body if isinstance(node, ast.ClassDef) else [node]
            defined.update(f.name for f in inner if isinstance(f, ast.FunctionDef | ast.ClassDef))
        trees.append((entry, tree))
    methods = frozenset(defined) | TORCH_OPS["aten"] | BUILTIN_METHODS
    for entry, tree in trees:
        judge = FileJudge(methods, tick)
        try:
            judge.module(tree)
        except RecursionError:
            judge.notes.append(Note(Severity.MEDIUM, "TorchScript source nested too deeply to judge", "", 0))
        _emit(judge.notes, entry, report)


def _parse(text: str, entry: str, report: Report) -> ast.Module | None:
    """Parse one entry; report source the TorchScript lexer might read differently from Python's."""
    m = _CONTROL.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        report(
            ts_hit(
                Note(Severity.MEDIUM, "control character in TorchScript source", repr(m.group(0)), line),
                entry,
                "the printer emits none; lexers may disagree on where lines or strings end",
            )
        )
        return None
    try:
        # The lexers agree on plain ASCII code with plain quoted strings: tokenize only what may differ.
        tokens = tokenize.generate_tokens(io.StringIO(text).readline) if _MAY_DIFFER.search(text) else ()
        for tok in tokens:
            bad = ""
            if tok.type == tokenize.STRING and tok.string[:1] not in ("'", '"'):
                bad = "string with a prefix"
            elif tok.type == tokenize.STRING and tok.string[:3] in ('"""', "'''"):
                bad = "triple-quoted string"
            elif tok.type == tokenize.NAME and not tok.string.isascii():
                bad = "non-ASCII identifier"
            elif tok.type not in (tokenize.STRING, tokenize.COMMENT) and not tok.string.isascii():
                bad = "non-ASCII character outside a string"
            elif tok.type == getattr(tokenize, "FSTRING_START", -1):
                bad = "f-string"
            if bad:
                report(
                    ts_hit(
                        Note(Severity.MEDIUM, f"{bad} in TorchScript source", tok.string[:40], tok.start[0]),
                        entry,
                        "the TorchScript printer emits none; it is read differently by Python and TorchScript",
                    )
                )
                return None
        return ast.parse(text, filename=entry, type_comments=False)
    except (SyntaxError, ValueError, MemoryError, RecursionError, tokenize.TokenError) as err:
        report(
            ts_hit(
                Note(Severity.MEDIUM, "unparsable TorchScript source", "", getattr(err, "lineno", 0) or 0),
                entry,
                f"{type(err).__name__}: {str(err)[:200]}; torch.jit.load may still accept it",
            )
        )
        return None


def _emit(notes: list[Note], entry: str, report: Report) -> None:
    seen: dict[tuple[str, str], int] = {}
    kept: list[Note] = []
    for n in notes:
        key = (n.title, n.name)
        if key in seen:
            seen[key] += 1
            continue
        seen[key] = 1
        kept.append(n)
    kept.sort(key=lambda n: -int(n.severity))
    for n in kept[:MAX_NOTES_PER_ENTRY]:
        extra = seen[(n.title, n.name)] - 1
        report(ts_hit(n, entry, f" ({extra} more like it)" if extra else ""))
    if len(kept) > MAX_NOTES_PER_ENTRY:
        rest = kept[MAX_NOTES_PER_ENTRY:]
        report(
            ts_hit(
                Note(max(n.severity for n in rest), "more TorchScript findings", "", 0),
                entry,
                f"{len(rest)} further distinct findings not listed",
            )
        )
