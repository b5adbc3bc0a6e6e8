"""Jinja2 chat templates: find the paths from a template to Python internals, by its syntax tree.

A chat template (``tokenizer_config.json`` ``chat_template``, ``chat_template.jinja``, GGUF
``tokenizer.chat_template``) is rendered by the tokenizer or the inference server. Rendered outside
Jinja's sandbox (llama-cpp-python before 0.2.72, CVE-2024-34359; several servers since), a template can
walk from any object to ``os``: ``''.__class__.__mro__[1].__subclasses__()``,
``cycler.__init__.__globals__.os``, ``self._TemplateReference__context``. Text matching misses the
attribute names an attacker assembles at render time (``|attr('__cla' ~ 'ss__')``,
``'_' * 2 ~ 'globals' ~ '_' * 2``, ``dict(__class__=1)|list|first``, ``'%c%c'|format(95, 95)``,
``'__ssalc__'[::-1]``), and flags harmless prompts that merely mention ``import``.

So we parse the template with Jinja2's own parser (``Environment.parse`` builds a syntax tree and
runs nothing), fold constant string expressions (concatenation, repetition, ``%``/``format``,
``join``, ``replace``, case filters, slicing and indexing, ``dict(...)`` keys, ``{% set %}`` and
``{% for %}`` over constants, block ``set``), and judge every attribute name, subscript and
``attr``/``map``/``selectattr``/``sort``... argument the template can reach. A dynamic ``attr`` argument
that does not fold is suspicious in itself: no real chat template needs one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["MAX_TEMPLATE", "TemplateIssue", "analyze_template", "scan_template"]

MAX_TEMPLATE = 1 << 20
"""Largest template parsed (real chat templates are a few kilobytes; Jinja's parser is recursive)."""
MAX_VALUES = 64
"""Possible values kept per folded expression; beyond it the expression counts as unknown."""
MAX_STRING = 4096
"""Longest folded string kept (a longer one cannot be an attribute name worth knowing)."""
_BIG_INT = 1 << 62
MAX_RANGE = 1_000_000
"""``range``/repetition sizes above this make a render exhaust memory or time (a DoS by template)."""

_ESCAPE_DUNDERS = frozenset(
    {
        "__class__",
        "__mro__",
        "__base__",
        "__bases__",
        "__subclasses__",
        "__globals__",
        "__builtins__",
        "__import__",
        "__init__",
        "__dict__",
        "__getattribute__",
        "__code__",
        "__func__",
        "__self__",
        "__module__",
        "__loader__",
        "__spec__",
        "__reduce__",
        "__reduce_ex__",
        "__closure__",
        "__wrapped__",
        "__call__",
        "__getitem__",
        "__new__",
        "__traceback__",
        "__context__",
        "__cause__",
    }
)
_INTERNALS = frozenset(
    {
        "func_globals",
        "func_code",
        "f_globals",
        "f_locals",
        "f_back",
        "f_builtins",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "ag_frame",
        "tb_frame",
        "tb_next",
        "co_code",
        "im_func",
        "mro",
        "environment",  # TemplateReference / Context attributes leading to the environment and its globals
        "_TemplateReference__context",
    }
)
_GADGETS = frozenset(
    {"cycler", "joiner", "lipsum", "self", "request", "config", "url_for", "get_flashed_messages"}
)
"""Names whose objects are the usual first step of an escape; harmless alone (``namespace`` is used by
real templates and is not listed)."""
_NAME_FILTERS = {"attr": 0, "map": None, "selectattr": 0, "rejectattr": 0, "sort": None, "groupby": 0}
_ATTRIBUTE_KW = ("attribute",)
# Operations that combine parts into a new string (case changes of unknown data do not: they cannot
# turn "role" into "__class__", and real templates lower-case roles before looking them up).
_BUILDING_FILTERS = frozenset({"join", "format", "replace", "string", "list", "batch", "slice", "urlencode"})
_BUILDING_METHODS = frozenset({"format", "join", "replace", "decode"})
_STR_METHODS = {"upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "swapcase"}
_STR_FILTERS = {"upper", "lower", "title", "capitalize", "trim", "string", "reverse", "e", "escape", "safe"}

# Fallback when the template does not parse (other engines, such as llama.cpp's, accept more).
_SSTI = re.compile(
    r"__(class|subclasses|globals|builtins|import|mro|base|init|getattribute|code)__|\bos\.(popen|system)"
    r"|\beval\(|\bexec\(|subprocess|lipsum|cycler|joiner|_TemplateReference__context|\|\s*attr\s*\("
    r"|['\"]_['\"]\s*\*\s*2|['\"]__['\"]\s*~|~\s*['\"]__['\"]",
    re.IGNORECASE,
)

Values = set[str] | None


class TemplateIssue:
    """One problem found in a template."""

    __slots__ = ("detail", "name", "severity", "title")

    def __init__(self, severity: Severity, title: str, detail: str, name: str = "") -> None:
        self.severity = severity
        self.title = title
        self.detail = detail
        self.name = name

    def __repr__(self) -> str:
        return f"TemplateIssue({self.severity.name}, {self.title!r}, {self.detail!r})"


def _judge_name(name: str) -> Severity | None:
    if name in _ESCAPE_DUNDERS or name in _INTERNALS:
        return Severity.CRITICAL
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        return Severity.HIGH
    if "__" in name and name.startswith("_"):  # a mangled private name
        return Severity.CRITICAL
    if name.startswith("_"):
        return Severity.HIGH
    return None


def _reversed(v: str) -> str:
    return v[::-1]


def _same(v: str) -> str:
    return v


def _cap(values: set[str]) -> Values:
    if len(values) > MAX_VALUES or any(len(v) > MAX_STRING for v in values):
        return None
    return values


class _Folder:
    """Constant folding of string expressions over a template tree, with ``set``/``for`` propagation."""

    def __init__(self) -> None:
        from jinja2 import nodes

        self.n = nodes
        self.env: dict[str, Values] = {}
        self.tainted: set[str] = set()  # names holding strings built at render time from unknown parts

    def built(self, node: Any) -> bool:
        """Whether ``node`` builds a string at render time (concatenation, formatting, joining, case or
        character tricks), or reads a name that holds one: the shape of an assembled attribute name.
        """
        n = self.n
        for sub in _walk(node):
            if isinstance(sub, (n.Concat, n.Mod, n.Mul)):
                return True
            if isinstance(sub, n.Filter) and sub.name in _BUILDING_FILTERS:
                return True
            if (
                isinstance(sub, n.Call)
                and isinstance(sub.node, n.Getattr)
                and sub.node.attr in _BUILDING_METHODS
            ):
                return True
            if isinstance(sub, n.Name) and sub.name in self.tainted:
                return True
        return False

    def assign(self, name: str, vals: Values) -> None:
        if name in self.env and self.env[name] is None:
            return
        if vals is None:
            self.env[name] = None
            return
        merged = (self.env.get(name) or set()) | vals
        self.env[name] = _cap(merged)

    def seq(self, node: Any) -> list[Values] | None:
        """Possible values of each item of a constant sequence (a list, ``dict(k=...)`` keys, a string)."""
        n = self.n
        if isinstance(node, (n.List, n.Tuple)):
            return [self.fold(x) for x in node.items]
        if isinstance(node, n.Dict):
            return [self.fold(p.key) for p in node.items]
        if isinstance(node, n.Call) and isinstance(node.node, n.Name) and node.node.name == "dict":
            return [{k.key} for k in node.kwargs]
        if isinstance(node, n.Filter) and node.name in ("list", "sort", "unique") and node.node is not None:
            inner = self.seq(node.node)
            if inner is not None:
                return inner
            s = self.fold(node.node)
            if s is not None and len(s) == 1:
                return [{c} for c in next(iter(s))]
            return None
        if isinstance(node, n.Filter) and node.name == "reverse" and node.node is not None:
            inner = self.seq(node.node)
            return None if inner is None else inner[::-1]
        return None

    def fold(self, node: Any) -> Values:  # one dispatch over node types reads best flat
        """The possible string values of ``node``, or ``None`` when not constant."""
        n = self.n
        if isinstance(node, n.Const):
            v = node.value
            return {v} if isinstance(v, str) else ({str(v)} if isinstance(v, (int, float)) else None)
        if isinstance(node, n.TemplateData):
            return {node.data}
        if isinstance(node, n.Name):
            return set(self.env[node.name]) if self.env.get(node.name) is not None else None  # type: ignore[arg-type]
        if isinstance(node, n.Output):
            return self._concat(node.nodes)
        if isinstance(node, n.Concat):
            return self._concat(node.nodes)
        if isinstance(node, n.Add):
            return self._concat([node.left, node.right])
        if isinstance(node, n.CondExpr):
            a, b = self.fold(node.expr1), self.fold(node.expr2) if node.expr2 is not None else {""}
            return None if a is None or b is None else _cap(a | b)
        if isinstance(node, n.Mul):
            return self._repeat(node.left, node.right)
        if isinstance(node, n.Mod):
            return self._format(
                node.left, node.right.items if isinstance(node.right, n.Tuple) else [node.right]
            )
        if isinstance(node, n.Getitem):
            return self._index(node)
        if isinstance(node, n.Filter) and node.node is not None:
            return self._filter(node)
        if isinstance(node, n.Call) and isinstance(node.node, n.Getattr):
            return self._method(node)
        return None

    def _concat(self, parts: list[Any]) -> Values:
        folded = [self.fold(p) for p in parts]
        if any(f is None for f in folded):
            return None
        combos = 1
        for f in folded:
            combos *= len(f)  # type: ignore[arg-type]
            if combos > MAX_VALUES:
                return None
        return _cap({"".join(c) for c in itertools.product(*folded)})  # type: ignore[arg-type]

    def _int(self, node: Any) -> int | None:
        n = self.n
        if isinstance(node, n.Const) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, n.Neg):
            v = self._int(node.node)
            return None if v is None else -v
        if isinstance(node, (n.Pow, n.Mul, n.Add)):  # 10**9, 1000*1000*1000: sizes written as arithmetic
            a, b = self._int(node.left), self._int(node.right)
            if a is None or b is None:
                return None
            if isinstance(node, n.Pow):
                if b < 0 or (abs(a) > 1 and b.bit_length() > 7) or abs(a).bit_length() * b > 62:
                    return _BIG_INT
                return int(a**b)
            return max(-_BIG_INT, min(_BIG_INT, a * b if isinstance(node, n.Mul) else a + b))
        return None

    def _repeat(self, left: Any, right: Any) -> Values:
        for s_node, i_node in ((left, right), (right, left)):
            k = self._int(i_node)
            s = self.fold(s_node) if k is not None else None
            if k is not None and s is not None and k >= 0 and all(len(x) * k <= MAX_STRING for x in s):
                return {x * k for x in s}
        return None

    def _format(self, fmt_node: Any, arg_nodes: list[Any]) -> Values:
        fmts = self.fold(fmt_node)
        if fmts is None:
            return None
        args: list[list[object]] = []
        for a in arg_nodes:
            i = self._int(a)
            if i is not None:
                args.append([i])
                continue
            folded = self.fold(a)
            if folded is None:
                return None
            args.append(list(folded))
        out: set[str] = set()
        for fmt in fmts:
            for combo in itertools.islice(itertools.product(*args), MAX_VALUES + 1):
                try:
                    out.add(fmt % tuple(combo))
                except (TypeError, ValueError, OverflowError):
                    try:
                        out.add(fmt.format(*combo))
                    except (IndexError, KeyError, ValueError, AttributeError):
                        return None
        return _cap(out)

    def _index(self, node: Any) -> Values:
        n = self.n
        if isinstance(node.arg, n.Slice):
            vals = self.fold(node.node)
            bounds = [
                None if x is None else self._int(x) for x in (node.arg.start, node.arg.stop, node.arg.step)
            ]
            given = [x for x in (node.arg.start, node.arg.stop, node.arg.step) if x is not None]
            if vals is None or sum(b is not None for b in bounds) != len(given) or bounds[2] == 0:
                return None
            return {v[slice(*bounds)] for v in vals}
        k = self._int(node.arg)
        if k is None:
            return None
        items = self.seq(node.node)
        if items is not None:
            return items[k] if -len(items) <= k < len(items) else None
        vals = self.fold(node.node)
        if vals is None:
            return None
        return {v[k] for v in vals if -len(v) <= k < len(v)} or None

    def _filter(self, node: Any) -> Values:
        name = node.name
        if name in ("first", "last"):
            items = self.seq(node.node)
            if items is not None and items:
                return items[0] if name == "first" else items[-1]
            vals = self.fold(node.node)
            if vals is None:
                return None
            return {(v[:1] if name == "first" else v[-1:]) for v in vals}
        if name == "join":
            items = self.seq(node.node)
            sep = self.fold(node.args[0]) if node.args else {""}
            if items is None:
                vals = self.fold(node.node)
                items = [{c} for c in next(iter(vals))] if vals is not None and len(vals) == 1 else None
            if items is None or sep is None or len(sep) != 1:
                return None
            s = next(iter(sep))
            return self._concat_values(items, s)
        if name == "format":
            return self._format(node.node, list(node.args))
        if name == "replace" and len(node.args) >= 2:
            vals, a, b = self.fold(node.node), self.fold(node.args[0]), self.fold(node.args[1])
            if vals is None or a is None or b is None:
                return None
            return _cap({v.replace(x, y) for v in vals for x in a for y in b})
        if name in _STR_FILTERS:
            vals = self.fold(node.node)
            if vals is None:
                return None
            ops: dict[str, Callable[[str], str]] = {
                "upper": str.upper,
                "lower": str.lower,
                "title": str.title,
                "capitalize": str.capitalize,
                "trim": str.strip,
                "reverse": _reversed,
            }
            return {ops.get(name, _same)(v) for v in vals}
        return None

    def _concat_values(self, items: list[Values], sep: str) -> Values:
        if any(i is None for i in items):
            return None
        combos = 1
        for i in items:
            combos *= len(i)  # type: ignore[arg-type]
            if combos > MAX_VALUES:
                return None
        return _cap({sep.join(c) for c in itertools.product(*items)})  # type: ignore[arg-type]

    def _method(self, node: Any) -> Values:
        meth = node.node.attr
        target = node.node.node
        if meth == "format":
            return self._format_method(target, node.args)
        if meth == "join" and node.args:
            sep = self.fold(target)
            items = self.seq(node.args[0])
            if sep is None or len(sep) != 1 or items is None:
                return None
            return self._concat_values(items, next(iter(sep)))
        if meth == "replace" and len(node.args) >= 2:
            vals, a, b = self.fold(target), self.fold(node.args[0]), self.fold(node.args[1])
            if vals is None or a is None or b is None:
                return None
            return _cap({v.replace(x, y) for v in vals for x in a for y in b})
        if meth in _STR_METHODS:
            vals = self.fold(target)
            return None if vals is None else {getattr(v, meth)() for v in vals}
        return None

    def _format_method(self, target: Any, args: list[Any]) -> Values:
        fmts = self.fold(target)
        folded = [self.fold(a) for a in args]
        if fmts is None or any(f is None for f in folded):
            return None
        out: set[str] = set()
        for f in fmts:
            for combo in itertools.islice(itertools.product(*folded), MAX_VALUES + 1):  # type: ignore[arg-type]
                try:
                    out.add(f.format(*combo))
                except (IndexError, KeyError, ValueError, AttributeError):
                    return None
        return _cap(out)


def _walk(node: Any) -> Iterator[Any]:
    """Pre-order walk without recursion (templates nest as deep as their author wants)."""
    stack = [node]
    while stack:
        cur = stack.pop()
        yield cur
        stack.extend(reversed(list(cur.iter_child_nodes())))


def analyze_template(source: str) -> list[TemplateIssue]:
    """Judge a Jinja2 template's syntax tree; nothing is rendered.

    Returns:
        The issues found (empty for an ordinary chat template).
    """
    if len(source) > MAX_TEMPLATE:
        return [
            TemplateIssue(
                Severity.MEDIUM,
                "template too large to inspect",
                f"{len(source)} characters (> {MAX_TEMPLATE})",
            )
        ]
    try:
        import jinja2
        from jinja2 import nodes
    except ImportError:  # pragma: no cover - jinja2 is a core dependency
        return _fallback(source, "jinja2 is not installed")
    env = jinja2.Environment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do"])  # parse only
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as err:
        return _fallback(source, f"line {err.lineno}: {err.message}")
    except (RecursionError, MemoryError):
        return [TemplateIssue(Severity.MEDIUM, "template nested too deeply to parse", "")]

    folder = _Folder()
    every = list(_walk(tree))
    for _round in range(3):  # values set later in the text can feed expressions earlier in a loop
        for node in every:
            if isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name):
                folder.assign(node.target.name, folder.fold(node.node))
                if folder.env.get(node.target.name) is None and folder.built(node.node):
                    folder.tainted.add(node.target.name)
            elif isinstance(node, nodes.AssignBlock) and isinstance(node.target, nodes.Name):
                folder.assign(node.target.name, folder._concat(list(node.body)))
            elif isinstance(node, nodes.For) and isinstance(node.target, nodes.Name):
                items = folder.seq(node.iter)
                if items is None or any(i is None for i in items):
                    folder.assign(node.target.name, None)
                else:
                    union: set[str] = set()
                    for i in items:
                        union |= i or set()
                    folder.assign(node.target.name, _cap(union))
            elif isinstance(node, (nodes.Assign, nodes.For)):
                for t in _walk(node.target):
                    if isinstance(t, nodes.Name):
                        folder.assign(t.name, None)
            elif isinstance(node, nodes.With):
                for target, value in zip(node.targets, node.values, strict=False):
                    if isinstance(target, nodes.Name):
                        folder.assign(target.name, folder.fold(value))
                        if folder.env.get(target.name) is None and folder.built(value):
                            folder.tainted.add(target.name)
            elif isinstance(node, (nodes.Macro, nodes.CallBlock)):
                for a in getattr(node, "args", []):
                    if isinstance(a, nodes.Name):
                        folder.assign(a.name, None)
    return _judge(every, folder, nodes)


def _judge(every: list[Any], folder: _Folder, nodes: Any) -> list[TemplateIssue]:
    issues: dict[tuple[str, str], TemplateIssue] = {}

    def add(sev: Severity, title: str, detail: str, name: str = "") -> None:
        issues.setdefault((title, name), TemplateIssue(sev, title, detail, name))

    def reach(name: str, how: str) -> None:
        sev = _judge_name(name)
        if sev is not None:
            add(
                sev,
                "template reaches Python internals",
                f"{how} {name!r}: a template rendered outside Jinja's sandbox walks from here to any Python "
                "object (os, subprocess, builtins)",
                name,
            )

    for node in every:
        if isinstance(node, nodes.Getattr):
            reach(node.attr, "attribute")
        elif isinstance(node, nodes.Getitem):
            keys = folder.fold(node.arg)
            for v in keys or ():
                reach(v, "subscript")
            if keys is None and folder.built(node.arg):
                # Jinja's subscript falls back to getattr: x[name] reaches x.__class__ like |attr does.
                add(
                    Severity.HIGH,
                    "template subscripts with a name built at render time",
                    "a subscript key is assembled from parts we cannot fold; Jinja resolves x[key] as an "
                    "attribute when no item exists, so this reaches names such as __class__",
                    "getitem",
                )
        elif isinstance(node, nodes.Filter) and node.name in _NAME_FILTERS:
            pos = _NAME_FILTERS[node.name]
            cands = [k.value for k in node.kwargs if k.key in _ATTRIBUTE_KW]
            if pos is not None and len(node.args) > pos:
                cands.append(node.args[pos])
            attr_like = node.name == "attr"
            if node.name == "map" and len(node.args) >= 2 and folder.fold(node.args[0]) == {"attr"}:
                cands.append(node.args[1])  # map('attr', name) applies |attr(name) to every item
                attr_like = True
            for c in cands:
                vals = folder.fold(c)
                if vals is None and (attr_like or folder.built(c)):
                    add(
                        Severity.HIGH,
                        "template reads an attribute whose name is computed",
                        "the |attr filter gets a name built at render time; templates use it to assemble "
                        "names such as __class__ that a text search would not see",
                        "attr",
                    )
                for v in vals or ():
                    for part in v.split("."):
                        reach(part, f"|{node.name} of")
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name in _GADGETS:
            add(
                Severity.LOW,
                f"template uses {node.name}",
                f"{node.name!r} is a first step of known sandbox escapes; alone it is harmless",
                node.name,
            )
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            add(
                Severity.MEDIUM,
                "template loads another template",
                f"a {type(node).__name__.lower()} tag reads a template through the renderer's loader, which "
                "may read files",
                type(node).__name__,
            )
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range":
            if any((folder._int(a) or 0) > MAX_RANGE for a in node.args):
                add(Severity.MEDIUM, "template loops over a huge range", "rendering exhausts time", "range")
        elif isinstance(node, (nodes.Mul, nodes.Pow)):
            for side in (node.left, node.right):
                if (folder._int(side) or 0) > MAX_RANGE:
                    add(Severity.MEDIUM, "template builds a huge value", "rendering exhausts memory", "mul")
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            v = node.value.strip()
            if re.fullmatch(r"__[A-Za-z]\w*__", v) and v in _ESCAPE_DUNDERS:
                add(
                    Severity.HIGH,
                    "template holds the name of a Python internal",
                    f"the string {v!r} names a Python internal; templates only need it to build an escape",
                    v,
                )
    return sorted(issues.values(), key=lambda i: -int(i.severity))


def _fallback(source: str, why: str) -> list[TemplateIssue]:
    out = [TemplateIssue(Severity.LOW, "template does not parse as Jinja2", why)]
    m = _SSTI.search(source)
    if m:
        out.append(
            TemplateIssue(
                Severity.HIGH,
                "unparsable template with sandbox-escape text",
                f"{m.group(0)!r}: other template engines may render what Jinja2 rejects",
                m.group(0),
            )
        )
    return out


def scan_template(source: str, *, where: str, entry: str, report: Callable[[Hit], None], kind: str) -> None:
    """Analyse one template and report its issues as hits naming ``where`` (the key or file it came from)."""
    for issue in analyze_template(source):
        report(
            Hit(
                issue.severity,
                f"{issue.title} ({where})" if issue.severity >= Severity.MEDIUM else issue.title,
                issue.detail,
                kind=kind,
                entry=entry,
                callable=issue.name or None,
                atlas=ATLAS_ARTIFACT if issue.severity >= Severity.MEDIUM else None,
                remediation="Replace the chat template with a reviewed one; render templates only in "
                "jinja2.sandbox.ImmutableSandboxedEnvironment.",
            )
        )
