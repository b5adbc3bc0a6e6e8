"""The resolver behind ``_torchscript.py``: what each name, attribute and call of TorchScript source is.

A function's local names are bound flow-insensitively (the union over all of its assignments, iterated to
a fixed point), and a name that is also a global keeps its global meaning too, so no assignment order
hides an alias. References are judged as they are formed, called or not.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._torch_ops import TORCH_OPS
from mlsecops.supplychain.scanner._ts_rules import (
    ALLOWED_CLASS_NAMESPACES,
    ALLOWED_NAMESPACES,
    ATTRIBUTE,
    CLASS_BASES,
    CLASS_LISTS,
    DATA,
    DENIED_NAMESPACES,
    DENIED_OPS,
    DUNDER_METHODS,
    GLOBALS,
    NAMESPACES,
    NOT_OPERATORS,
    PYTHON_ESCAPES,
    REMOTE_OPS,
    TYPE_NAMES,
    Note,
    dotted,
    dunder,
    is_name,
)

__all__ = ["MAX_BIND_ROUNDS", "FileJudge"]

MAX_BIND_ROUNDS = 12
"""Passes over a function to follow aliases (printer output needs 2: bind, confirm). A chain of aliases
written backwards needs one pass per link; past this bound the function is reported, not trusted."""


class FileJudge:
    """Walk one parsed ``code/`` entry and collect ``notes``."""

    def __init__(self, methods: frozenset[str], tick: Callable[[], None]) -> None:
        self.methods = methods
        self.tick = tick
        """Called once per pass over a function; raises when the scan's time budget is spent."""
        self.notes: list[Note] = []
        self.env: dict[str, set[str]] = {}
        self.quiet = False

    def note(self, sev: Severity, title: str, name: str, node: ast.AST) -> None:
        if not self.quiet:
            self.notes.append(Note(sev, title, name, getattr(node, "lineno", 0)))

    # -- module and class level ------------------------------------------------------------------------

    def module(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            if isinstance(stmt, ast.ClassDef):
                self.classdef(stmt)
            elif isinstance(stmt, ast.FunctionDef):
                self.function(stmt)
            elif isinstance(stmt, ast.Assign) and is_name(stmt.targets, "op_version_set"):
                self.constant(stmt.value)
            else:
                self.note(Severity.MEDIUM, "unexpected top-level statement", type(stmt).__name__, stmt)

    def classdef(self, node: ast.ClassDef) -> None:
        for dec in node.decorator_list:
            self.note(Severity.MEDIUM, "decorator in TorchScript source", ast.unparse(dec)[:80], dec)
            self.value(dec, alias=True)
        for kw in node.keywords:
            self.note(Severity.MEDIUM, "class keyword in TorchScript source", kw.arg or "**", node)
        for base in node.bases:
            if not (isinstance(base, ast.Name) and base.id in CLASS_BASES):
                self.type_expr(base)
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef):
                self.function(stmt)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                self.type_expr(stmt.annotation)
                if stmt.value is not None:
                    self.constant(stmt.value)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
                if isinstance(target, ast.Name) and target.id in CLASS_LISTS:
                    self.constant(stmt.value)
                elif (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "__annotations__"
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                ):
                    self.type_expr(stmt.value)
                elif isinstance(target, ast.Name) and not dunder(target.id):
                    self.constant(stmt.value)  # enum members and class constants
                else:
                    self.note(
                        Severity.MEDIUM, "unexpected class-level assignment", ast.unparse(target)[:80], stmt
                    )
            elif isinstance(stmt, ast.Pass) or (
                isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            ):
                continue
            else:
                self.note(Severity.MEDIUM, "unexpected class-level statement", type(stmt).__name__, stmt)

    def constant(self, node: ast.expr) -> None:
        """A class constant or default: literals (and containers of them) only."""
        for sub in ast.walk(node):
            ok = isinstance(sub, ast.Constant | ast.Tuple | ast.List | ast.Load | ast.unaryop | ast.Dict)
            ok = ok or (isinstance(sub, ast.UnaryOp) and isinstance(sub.operand, ast.Constant))
            ok = ok or (isinstance(sub, ast.Name) and sub.id in ("inf", "nan", "None"))
            if not ok:
                self.note(
                    Severity.MEDIUM, "non-literal constant in TorchScript source", type(sub).__name__, sub
                )
                self.value(node)
                return

    def type_expr(self, node: ast.expr) -> None:
        """A type annotation: type names, subscripts of them and ``__torch__`` class paths only."""
        if isinstance(node, ast.Name) and node.id in TYPE_NAMES:
            return
        if isinstance(node, ast.Constant) and node.value is None:
            return
        if isinstance(node, ast.Tuple | ast.List):
            for e in node.elts:
                self.type_expr(e)
            return
        if isinstance(node, ast.Subscript):
            self.type_expr(node.value)
            self.type_expr(node.slice)
            return
        if isinstance(node, ast.Attribute):
            path = dotted(node)
            if path is not None and path.startswith("__torch__."):
                self.judge_class_path(path, node)
                return
        self.note(Severity.MEDIUM, "unexpected expression in a type position", ast.unparse(node)[:80], node)
        self.value(node, alias=True)

    # -- functions -------------------------------------------------------------------------------------

    def function(self, fn: ast.FunctionDef) -> None:
        for dec in fn.decorator_list:
            self.note(Severity.MEDIUM, "decorator in TorchScript source", ast.unparse(dec)[:80], dec)
            self.value(dec, alias=True)
        a = fn.args
        if a.vararg or a.kwarg:
            self.note(Severity.MEDIUM, "variadic parameters in TorchScript source", fn.name, fn)
        params = a.posonlyargs + a.args + a.kwonlyargs
        for p in params:
            if p.annotation is not None:
                self.type_expr(p.annotation)
        for d in [*a.defaults, *(x for x in a.kw_defaults if x is not None)]:
            self.constant(d)
        if fn.returns is not None:
            self.type_expr(fn.returns)
        self.env = {p.arg: {DATA} for p in params}
        # Bind locals to a fixed point without reporting, then judge every statement once.
        self.quiet = True
        for _ in range(MAX_BIND_ROUNDS):
            self.tick()
            before = {k: set(v) for k, v in self.env.items()}
            self.block(fn.body)
            if before == self.env:
                break
        else:
            self.quiet = False
            self.note(Severity.MEDIUM, "aliases too deep to resolve in TorchScript source", fn.name, fn)
        self.quiet = False
        self.block(fn.body)

    def bind(self, target: ast.expr, values: set[str]) -> None:
        if isinstance(target, ast.Name):
            self.env.setdefault(target.id, set()).update(values)
        elif isinstance(target, ast.Tuple | ast.List):
            for e in target.elts:
                self.bind(e, {DATA})
        elif isinstance(target, ast.Attribute):
            self.value(target.value)
            if dunder(target.attr):
                self.note(Severity.MEDIUM, "assignment to a dunder attribute", target.attr, target)
        elif isinstance(target, ast.Subscript):
            self.value(target.value)
            self.value(target.slice)
        else:
            self.note(Severity.MEDIUM, "unsupported assignment target", type(target).__name__, target)

    def block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt)

    def stmt(self, s: ast.stmt) -> None:
        if isinstance(s, ast.Assign):
            values = self.value(s.value, alias=len(s.targets) == 1 and isinstance(s.targets[0], ast.Name))
            for t in s.targets:
                self.bind(t, values)
        elif isinstance(s, ast.AnnAssign):
            self.type_expr(s.annotation)
            values = self.value(s.value, alias=True) if s.value is not None else {DATA}
            self.bind(s.target, values)
        elif isinstance(s, ast.AugAssign):
            self.value(s.value)
            self.bind(s.target, {DATA})
            self.value(s.target)
        elif isinstance(s, ast.Expr | ast.Return):
            if s.value is not None:
                self.value(s.value)
        elif isinstance(s, ast.If | ast.While):
            self.value(s.test)
            self.block(s.body)
            self.block(s.orelse)
        elif isinstance(s, ast.For):
            self.value(s.iter)
            self.bind(s.target, {DATA})
            self.block(s.body)
            self.block(s.orelse)
        elif isinstance(s, ast.With):
            for item in s.items:
                self.value(item.context_expr)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, {DATA})
            self.block(s.body)
        elif isinstance(s, ast.Assert):
            self.value(s.test)
            if s.msg is not None:
                self.value(s.msg)
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                self.value(t)
        elif isinstance(s, ast.Pass | ast.Break | ast.Continue):
            return
        elif isinstance(s, ast.FunctionDef):
            # A closure (the printer emits one for each fork()); it sees the enclosing locals, so its
            # body is judged in the same (union) scope.
            for dec in s.decorator_list:
                self.note(Severity.MEDIUM, "decorator in TorchScript source", ast.unparse(dec)[:80], dec)
                self.value(dec, alias=True)
            a = s.args
            if a.vararg or a.kwarg or a.defaults or a.kw_defaults:
                self.note(Severity.MEDIUM, "closure with defaults or variadic parameters", s.name, s)
            for p in a.posonlyargs + a.args + a.kwonlyargs:
                self.bind(ast.Name(id=p.arg), {DATA})
                if p.annotation is not None:
                    self.type_expr(p.annotation)
            if s.returns is not None:
                self.type_expr(s.returns)
            self.env.setdefault(s.name, set()).add(f"closure.{s.name}")
            self.block(s.body)
        else:
            self.note(Severity.MEDIUM, "unsupported statement in TorchScript source", type(s).__name__, s)
            for child in ast.iter_child_nodes(s):  # still judge what it contains
                if isinstance(child, ast.stmt):
                    self.stmt(child)
                elif isinstance(child, ast.expr):
                    self.value(child)

    # -- expressions -----------------------------------------------------------------------------------

    def value(self, e: ast.expr, *, alias: bool = False) -> set[str]:
        """Resolve ``e`` used as a value; namespaces may only be aliased (``alias``), never passed on."""
        vals = self.resolve(e)
        for v in vals:
            if v != DATA and not alias and (v in NAMESPACES or (v.startswith("ops.") and v.count(".") == 1)):
                self.note(Severity.MEDIUM, "namespace used as a value", v, e)
            elif (
                v != DATA
                and not alias
                and v.startswith("builtin.")
                and isinstance(e, ast.Name | ast.Attribute)
            ):
                self.note(Severity.MEDIUM, "builtin used as a value", v, e)
        return vals

    def resolve(self, e: ast.expr) -> set[str]:
        if isinstance(e, ast.Name):
            return self.name(e)
        if isinstance(e, ast.Attribute):
            return {self.attr(v, e.attr, e) for v in self.resolve(e.value)}
        if isinstance(e, ast.Call):
            return self.call(e)
        if isinstance(e, ast.Constant):
            if not isinstance(e.value, str | int | float | complex | bool | type(None) | type(...)):
                self.note(
                    Severity.MEDIUM, "unexpected literal in TorchScript source", type(e.value).__name__, e
                )
            return {DATA}
        if isinstance(e, ast.Subscript):
            base = self.value(e.value)
            self.value(e.slice)
            if base != {DATA}:
                self.note(Severity.MEDIUM, "subscript of a reference", ",".join(sorted(base - {DATA})), e)
            return {DATA}
        if isinstance(e, ast.ListComp | ast.DictComp):
            for gen in e.generators:
                self.value(gen.iter)
                self.bind(gen.target, {DATA})
                for cond in gen.ifs:
                    self.value(cond)
            for part in (e.elt,) if isinstance(e, ast.ListComp) else (e.key, e.value):
                self.value(part)
            return {DATA}
        simple = (ast.Tuple, ast.List, ast.Dict, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp)
        simple_slice = (ast.Slice, ast.Set)
        if not isinstance(e, simple + simple_slice):
            self.note(Severity.MEDIUM, "unsupported expression in TorchScript source", type(e).__name__, e)
        for child in ast.iter_child_nodes(e):
            if isinstance(child, ast.expr):
                self.value(child)
            elif isinstance(child, ast.arguments | ast.comprehension):
                for sub in ast.walk(child):
                    if isinstance(sub, ast.expr):
                        self.value(sub)
        return {DATA}

    def name(self, e: ast.Name) -> set[str]:
        out = set(self.env.get(e.id, ()))
        if e.id in GLOBALS:
            out.add(GLOBALS[e.id])
        if not out:
            if e.id in DENIED_OPS or e.id in PYTHON_ESCAPES:
                self.note(Severity.HIGH, "TorchScript source names a file or import function", e.id, e)
            else:
                self.note(Severity.MEDIUM, "unresolved name in TorchScript source", e.id, e)
            out.add(DATA)
        return out

    def attr(self, base: str, field: str, node: ast.AST) -> str:
        """The value of ``base.field``, judged as it is formed."""
        if base == DATA:
            if field in DENIED_OPS:
                self.note(
                    Severity.HIGH, "TorchScript calls a method named like a file operation", field, node
                )
            elif dunder(field) and field not in DUNDER_METHODS:
                self.note(Severity.MEDIUM, "dunder attribute in TorchScript source", field, node)
            return DATA
        if base == "torch" or (base.startswith("ops.") and base.count(".") == 1):
            ns = "aten" if base == "torch" else base[4:]
            if field == "autograd":
                return "torch"  # the importer treats torch.autograd (and ops.NS.autograd) as the aten module
            path = f"{base}.{field}"
            if field in DENIED_OPS or ns in DENIED_NAMESPACES:
                self.note(Severity.CRITICAL, "TorchScript calls a file operation", path, node)
            elif field in REMOTE_OPS:
                self.note(Severity.HIGH, "TorchScript calls a remote procedure", path, node)
            elif ns == "aten" and field in NOT_OPERATORS:
                self.note(Severity.HIGH, "TorchScript reaches torch internals", path, node)
            elif ns in ALLOWED_NAMESPACES and field not in TORCH_OPS[ns]:
                self.note(Severity.MEDIUM, "unknown operator in TorchScript source", path, node)
            return path
        if base == "ops":
            if field in DENIED_NAMESPACES:
                self.note(Severity.CRITICAL, "TorchScript calls a file operation", f"ops.{field}", node)
            elif field not in ALLOWED_NAMESPACES:
                self.note(
                    Severity.HIGH, "TorchScript calls a custom operator namespace", f"ops.{field}", node
                )
            return f"ops.{field}"
        if base.startswith("__torch__"):
            path = f"{base}.{field}"
            self.judge_class_path(path, node)
            return path
        self.note(Severity.MEDIUM, "attribute of an operator or builtin", f"{base}.{field}", node)
        return DATA

    def judge_class_path(self, path: str, node: ast.AST) -> None:
        parts = path.split(".")
        if (
            parts[1:3] == ["torch", "classes"]
            and len(parts) == 4
            and parts[3] not in ALLOWED_CLASS_NAMESPACES
        ):
            self.note(Severity.HIGH, "TorchScript uses a registered C++ class", path, node)
        if any(dunder(p) for p in parts[1:-1]) or (dunder(parts[-1]) and parts[-1] != "__new__"):
            self.note(Severity.MEDIUM, "dunder attribute in TorchScript source", path, node)

    def call(self, e: ast.Call) -> set[str]:
        f = e.func
        args = list(e.args)
        if isinstance(f, ast.Name) and f.id in ("getattr", "hasattr") and f.id not in self.env:
            if len(args) in (2, 3) and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str):
                field = args[1].value
                if not ATTRIBUTE.fullmatch(field):
                    self.note(Severity.MEDIUM, "getattr of a non-identifier", field[:40], e)
                got = {self.attr(v, field, e) for v in self.value(args[0], alias=True)}
                for extra in args[2:] + [k.value for k in e.keywords]:
                    self.value(extra)
                return {DATA} if f.id == "hasattr" else got
            self.note(Severity.MEDIUM, f"{f.id} with a computed attribute name", f.id, e)
        if isinstance(f, ast.Name | ast.Attribute):
            callees = self.resolve(f)
        else:
            self.value(f)
            self.note(Severity.MEDIUM, "call of a value that cannot be resolved", type(f).__name__, e)
            callees = {DATA}
        typed = {"builtin.annotate": 0, "builtin.unchecked_cast": 0, "builtin.uninitialized": 0}
        for c in callees:
            if c == DATA:
                if isinstance(f, ast.Attribute):
                    if f.attr not in self.methods and not self.quiet:
                        self.note(Severity.MEDIUM, "unknown method in TorchScript source", f.attr, e)
                elif isinstance(f, ast.Name):
                    self.note(Severity.MEDIUM, "call of a local value", f.id, e)
            elif c in NAMESPACES or (c.startswith("ops.") and c.count(".") == 1):
                self.note(Severity.MEDIUM, "call of a namespace", c, e)
        type_pos = {typed[c] for c in callees if c in typed}
        if "builtin.isinstance" in callees:
            type_pos.add(1)
        for i, a in enumerate(args):
            if isinstance(a, ast.Starred):
                self.note(Severity.MEDIUM, "argument unpacking in TorchScript source", "*", a)
                self.value(a.value)
            elif i in type_pos:
                self.type_expr(a)
            else:
                self.value(a)
        for k in e.keywords:
            if k.arg is None:
                self.note(Severity.MEDIUM, "argument unpacking in TorchScript source", "**", k.value)
            self.value(k.value)
        return {DATA}
