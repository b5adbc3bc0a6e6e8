"""``torch.export`` programs (``.pt2``, written by ``torch.export.save``), recognised by their layout.

A ``.pt2`` is a zip: ``archive_format`` (``pt2``), ``models/<name>.json`` (the serialized graph),
``data/weights/`` and ``data/constants/`` payloads described by ``*_config.json``, and
``data/sample_inputs/<name>.pt`` (a ``torch.save`` zip). ``torch.export.load`` runs code from it in
five places, each checked here:

- graph node targets: resolved by ``getattr`` from ``torch``, ``_operator`` or ``math`` (the first
  segment is only compared by prefix) and called when the program runs. Allowed: operators of torch's
  own namespaces (``_torch_ops.py``), a list of higher-order operators, ``_operator``/``math``
  arithmetic and a few ``torch`` functions export emits. File operators are critical, other namespaces
  (they need a loaded library) and other ``torch.*`` callables high, anything else medium.
- symbolic expressions (``expr_str``): parsed with ``sympy.sympify``, which evaluates Python. Only
  sympy constructors, torch's sympy functions, symbols and arithmetic are clean.
- ``guards_code``: pasted into Python source and ``exec``-ed by ``ExportedProgram.module()``. Only
  comparisons over input sizes are clean.
- payloads with ``use_pickle`` and ``opaque_obj_`` constants: ``torch.load(weights_only=False)`` and
  ``pickle.loads``; they are walked by the pickle scanner. Raw tensor payloads are never unpickled and
  are skipped. ``custom_obj_`` constants and ``class_fqn`` values need registered C++ classes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._torch_ops import HIGHER_ORDER_OPS, TORCH_OPS
from mlsecops.supplychain.scanner._ts_rules import (
    ALLOWED_CLASS_NAMESPACES,
    ALLOWED_NAMESPACES,
    DENIED_NAMESPACES,
    DENIED_OPS,
    REMOTE_OPS,
    words,
)
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["FORMAT", "ExportPlan", "is_torch_export", "plan_payloads", "scan_export_program"]

Report = Callable[[Hit], None]

FORMAT = "torch-export"
"""The format name of a ``torch.export`` program archive."""
MAX_JSON_DEPTH = 256
"""Nesting of the program JSON walked (export graphs nest a few levels per higher-order operator)."""
MAX_EXPR_CHARS = 4096
"""Longest symbolic expression or guard judged; longer ones are reported rather than parsed."""

SAFE_HIGHER_ORDER = words(
    "cond while_loop while_loop_stack_output map_impl scan associative_scan wrap wrap_with_set_grad_enabled "
    "wrap_with_autocast auto_functionalized auto_functionalized_v2 invoke_subgraph out_dtype with_effects "
    "hints_wrapper tag_activation_checkpoint wrap_activation_checkpoint _export_tracepoint print"
)
"""Higher-order operators that run only graphs stored in the same program (others run compiled code,
inline assembly, delegates or arbitrary Python callables)."""
_OPERATOR_FUNCS = words(
    "getitem add sub mul truediv floordiv mod pow neg pos abs eq ne lt le gt ge and_ or_ xor not_ invert "
    "lshift rshift matmul truth"
)
_MATH_FUNCS = words(
    "sqrt floor ceil trunc exp log log2 log10 sin cos tan tanh asin acos atan sinh cosh fabs pow isnan isinf"
)
_TORCH_FUNCS = words(
    "torch._assert torch._assert_async torch._check torch._check_is_size torch.sym_int torch.sym_float "
    "torch.sym_max torch.sym_min torch.sym_not torch.sym_sqrt torch.sym_ite torch.sym_sum torch._sym_sqrt "
    "torch._C._set_grad_enabled torch.amp.autocast_mode._enter_autocast torch.amp.autocast_mode._exit_autocast "
    "torch._functorch.predispatch._add_batch_dim torch._functorch.predispatch._remove_batch_dim "
    "torch._functorch.predispatch._vmap_increment_nesting torch._functorch.predispatch._vmap_decrement_nesting"
)
"""Plain ``torch`` functions that export writes as graph targets."""
_SYMPY = words(
    "Symbol Integer Float Rational Mul Add Pow Mod Max Min Abs floor ceiling Eq Ne Lt Le Gt Ge Equality "
    "Unequality GreaterThan LessThan StrictGreaterThan StrictLessThan And Or Not true false oo zoo nan "
    "IntInfinity NegativeIntInfinity int_oo Infinity NegativeInfinity One Zero NegativeOne Half "
    "FloorDiv ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift "
    "PowByNatural FloatPow FloatTrueDiv IntTrueDiv IsNonOverlappingAndDenseIndicator TruncToFloat "
    "TruncToInt RoundToInt RoundDecimal ToFloat Identity sqrt OpaqueUnaryFn_sqrt"
)
"""Names a symbolic expression may use: sympy constructors and torch's sympy functions."""
_GUARD_METHODS = words("size stride storage_offset dim numel")
_SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_KEY = re.compile(r"[A-Za-z0-9_.]{0,128}")
_OVERLOAD = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_ARITH = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not,
    ast.And, ast.Or, ast.BitAnd, ast.BitOr, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Load,
)  # fmt: skip


def is_torch_export(names: list[str]) -> bool:
    """True when the zip entry names have the layout of a ``torch.export`` program."""
    if any(n == "archive_format" or n.endswith("/archive_format") for n in names):
        return True
    return any("models/" in n and n.endswith(".json") for n in names) and any(
        "data/weights/" in n for n in names
    )


@dataclass
class ExportPlan:
    """How each payload entry of a program is read by ``torch.export.load``."""

    raw: set[str] = field(default_factory=set)
    """Entries read as raw tensor bytes only (never unpickled)."""
    pickled: set[str] = field(default_factory=set)
    """Entries unpickled (``torch.load(weights_only=False)``, ``pickle.loads``, torchbind)."""


def plan_payloads(config: object, config_entry: str, names: set[str], plan: ExportPlan) -> None:
    """Record the payloads a ``model_weights_config.json``/``model_constants_config.json`` describes."""
    folder = config_entry.rsplit("/", 1)[0] + "/" if "/" in config_entry else ""
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        return
    for meta in entries.values():
        if not isinstance(meta, dict) or not isinstance(meta.get("path_name"), str):
            continue
        path_name = meta["path_name"]
        target = folder + path_name
        if target not in names:
            continue
        constant = "/data/constants/" in "/" + folder
        raw = meta.get("use_pickle") is False and (not constant or path_name.startswith("tensor_"))
        (plan.raw if raw else plan.pickled).add(target)
    plan.raw -= plan.pickled  # one entry described both ways is unpickled by one of them


@dataclass
class _Walker:
    entry: str
    report: Report
    seen: set[tuple[str, str]] = field(default_factory=set)

    def hit(self, sev: Severity, title: str, what: str, detail: str = "") -> None:
        key = (title, what)
        if key in self.seen:
            return
        self.seen.add(key)
        self.report(
            Hit(
                sev,
                title,
                f"{what[:200]!r}{'; ' + detail if detail else ''}",
                kind="torch-export",
                entry=self.entry,
                callable=what[:200] or None,
                atlas=ATLAS_ARTIFACT,
                remediation="Export the program again from reviewed code; load only programs you trust.",
            )
        )


def scan_export_program(program: object, *, entry: str, report: Report) -> None:
    """Judge one parsed ``models/<name>.json``: node targets, expressions, guards and custom classes."""
    w = _Walker(entry, report)
    stack: list[tuple[object, int]] = [(program, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            w.hit(
                Severity.MEDIUM, "torch.export program nested too deeply", "", f"deeper than {MAX_JSON_DEPTH}"
            )
            continue
        if isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
            continue
        if not isinstance(node, dict):
            continue
        if "target" in node and "inputs" in node:
            _target(node["target"], w)
        for key, value in node.items():
            if key == "expr_str":
                _expression(value, w, guard=False)
            elif key == "guards_code" and value is not None:
                for guard in value if isinstance(value, list) else [value]:
                    _expression(guard, w, guard=True)
            elif key == "class_fqn":
                _custom_class(value, w)
            elif isinstance(value, dict | list):
                stack.append((value, depth + 1))


def _target(target: object, w: _Walker) -> None:
    if not isinstance(target, str) or not target:
        w.hit(Severity.MEDIUM, "malformed torch.export node target", repr(target)[:80])
        return
    parts = target.split(".")
    head = parts[0]
    if target.startswith("#"):
        w.hit(Severity.MEDIUM, "torch.export extension operator", target, "it needs a registered handler")
    elif (head == "_operator" and len(parts) == 2 and parts[1] in _OPERATOR_FUNCS) or (
        head == "math" and len(parts) == 2 and parts[1] in _MATH_FUNCS
    ):
        return
    elif head == "torch" and parts[1:2] == ["ops"] and len(parts) in (4, 5):
        _operator(parts, target, w)
    elif head == "torch" and target in _TORCH_FUNCS:
        return
    elif target.startswith(("torch", "_operator", "math")):
        # torch.export.load resolves these by getattr from the module the prefix names and calls them.
        if parts[-1] in DENIED_OPS:
            w.hit(Severity.CRITICAL, "torch.export graph calls a file operation", target)
        else:
            w.hit(Severity.HIGH, "torch.export graph calls a Python function", target, "not an operator")
    else:
        w.hit(Severity.MEDIUM, "unresolvable torch.export node target", target)


def _operator(parts: list[str], target: str, w: _Walker) -> None:
    ns, op = parts[2], parts[3]
    overload = parts[4] if len(parts) == 5 else "default"
    if ns == "higher_order":
        if len(parts) != 4 or op not in SAFE_HIGHER_ORDER:
            sev = Severity.HIGH if op in HIGHER_ORDER_OPS else Severity.MEDIUM
            w.hit(sev, "torch.export higher-order operator off the allow-list", target)
    elif op in DENIED_OPS or ns in DENIED_NAMESPACES:
        w.hit(Severity.CRITICAL, "torch.export graph calls a file operation", target)
    elif op in REMOTE_OPS:
        w.hit(Severity.HIGH, "torch.export graph calls a remote procedure", target)
    elif ns not in ALLOWED_NAMESPACES:
        w.hit(
            Severity.HIGH, "torch.export graph calls a custom operator namespace", target, "needs a library"
        )
    elif op not in TORCH_OPS[ns] or not _OVERLOAD.fullmatch(overload) or len(parts) != 5:
        w.hit(Severity.MEDIUM, "unknown operator in torch.export graph", target)


def _custom_class(fqn: object, w: _Walker) -> None:
    parts = fqn.split(".") if isinstance(fqn, str) else []
    if (
        parts[:3] == ["__torch__", "torch", "classes"]
        and len(parts) == 5
        and parts[3] in ALLOWED_CLASS_NAMESPACES
    ):
        return
    w.hit(Severity.HIGH, "torch.export program uses a registered C++ class", str(fqn)[:200])


def _expression(text: object, w: _Walker, *, guard: bool) -> None:
    """Judge a string that torch.export.load evaluates (sympify) or executes (guards)."""
    what = "guard" if guard else "symbolic expression"
    if not isinstance(text, str) or len(text) > MAX_EXPR_CHARS:
        w.hit(Severity.MEDIUM, f"torch.export {what} not judged", repr(text)[:80], "not a short string")
        return
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        w.hit(Severity.HIGH, f"unparsable torch.export {what}", text, "it is evaluated as Python when loaded")
        return
    bad = _bad_node(tree, guard=guard) if not (guard and any(c in text for c in "#\\\n\r")) else "#"
    if bad:
        # Calls and attribute lookups outside the allow-list run when the program is loaded.
        sev = Severity.CRITICAL if bad in ("Call", "Attribute", "Lambda", "NamedExpr") else Severity.HIGH
        w.hit(sev, f"torch.export {what} is code", text, f"{bad} is evaluated as Python when loaded")


def _bad_node(tree: ast.AST, *, guard: bool) -> str:
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, *_ARITH))
        if isinstance(node, ast.Constant):
            ok = isinstance(node.value, int | float | bool) or (
                isinstance(node.value, str) and (_KEY if guard else _SYMBOL).fullmatch(node.value) is not None
            )
        elif isinstance(node, ast.Name):
            ok = node.id in _SYMPY or node.id == "L" if guard else bool(_SYMBOL.fullmatch(node.id))
        elif isinstance(node, ast.Call):
            func = node.func
            ok = (isinstance(func, ast.Name) and func.id in _SYMPY) or (
                guard and isinstance(func, ast.Attribute) and func.attr in _GUARD_METHODS
            )
        elif isinstance(node, ast.keyword):
            ok = (
                not guard
                and node.arg is not None
                and node.arg.isidentifier()
                and not node.arg.startswith("_")
            )
        elif isinstance(node, ast.Attribute):
            ok = guard and node.attr in _GUARD_METHODS
        elif isinstance(node, ast.Subscript | ast.Slice | ast.Tuple):
            ok = guard
        if not ok:
            return type(node).__name__
    return ""
