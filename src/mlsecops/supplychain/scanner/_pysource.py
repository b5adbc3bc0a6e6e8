"""Python source in model repositories: what ``trust_remote_code`` (or an archive's loader) would run.

``transformers`` imports the modules a repository's ``auto_map`` names and instantiates their classes;
torch.package and other loaders import the modules they carry. We parse the source with ``ast`` (it
builds a tree and runs nothing), resolve names through the module's imports (``import subprocess as
sp``, ``from os import system as s``, ``getattr(os, "sys" + "tem")``), and report references to:

=============  ============================================================================  =========
category       examples                                                                       severity
=============  ============================================================================  =========
process        ``os.system``, ``os.popen``, ``os.exec*``/``spawn*``, ``subprocess.*``, ``pty``  critical
code           ``eval``, ``exec``                                                             critical
native         ``ctypes.CDLL``, ``cffi``                                                      high
import         ``__import__``, ``importlib.import_module`` of a computed name, ``runpy``        high
deserialise    ``pickle.load(s)``, ``marshal.loads``, ``dill``, ``torch.load`` without         high
               ``weights_only=True``, ``yaml.load`` without a safe loader, ``numpy.load``
               with ``allow_pickle=True``
network        ``socket``, ``urllib.request``, ``http.client``, ``requests``, ``httpx``...   high
file system    writes, deletes, renames, permission changes                                  low in a
                                                                                              function,
                                                                                              medium at
                                                                                              import
=============  ============================================================================  =========

Tokenizer code writes its vocabulary in ``save_vocabulary``: a write inside a function is reported
but does not make the file suspicious; one that runs on import does.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["MAX_SOURCE", "PyIssue", "analyze_python", "looks_like_python", "scan_python_source"]

MAX_SOURCE = 4 << 20
"""Largest source parsed (modeling files are tens of kilobytes; ``ast`` needs ~20x the text in memory)."""
MAX_ISSUES = 64
"""Distinct references reported per file."""

_C, _H, _M, _L = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW

# Exact dotted names, then module prefixes (every attribute of the module).
_EXACT: dict[str, tuple[Severity, str]] = {
    "builtins.eval": (_C, "code"),
    "builtins.exec": (_C, "code"),
    "builtins.compile": (_H, "code"),
    "builtins.__import__": (_H, "import"),
    "builtins.breakpoint": (_H, "code"),
    "os.system": (_C, "process"),
    "os.popen": (_C, "process"),
    "os.fork": (_C, "process"),
    "os.forkpty": (_C, "process"),
    "os.posix_spawn": (_C, "process"),
    "os.posix_spawnp": (_C, "process"),
    "os.startfile": (_C, "process"),
    "platform.popen": (_C, "process"),
    "asyncio.create_subprocess_exec": (_C, "process"),
    "asyncio.create_subprocess_shell": (_C, "process"),
    "types.CodeType": (_H, "code"),
    "types.FunctionType": (_H, "code"),
    "marshal.loads": (_H, "deserialise"),
    "marshal.load": (_H, "deserialise"),
    "shelve.open": (_H, "deserialise"),
    "joblib.load": (_H, "deserialise"),
    "jsonpickle.decode": (_H, "deserialise"),
    "yaml.unsafe_load": (_H, "deserialise"),
    "yaml.full_load": (_H, "deserialise"),
    "importlib.import_module": (_H, "import"),
    "importlib.__import__": (_H, "import"),
    "importlib.util.spec_from_file_location": (_H, "import"),
    "importlib.util.module_from_spec": (_H, "import"),
    "importlib.machinery.SourceFileLoader": (_H, "import"),
    "imp.load_source": (_H, "import"),
    "imp.load_module": (_H, "import"),
    "imp.load_dynamic": (_H, "import"),
    "ctypes.CDLL": (_H, "native"),
    "ctypes.PyDLL": (_H, "native"),
    "ctypes.WinDLL": (_H, "native"),
    "ctypes.cdll": (_H, "native"),
    "ctypes.pydll": (_H, "native"),
    "ctypes.windll": (_H, "native"),
    "ctypes.util.find_library": (_M, "native"),
    "urllib.urlopen": (_H, "network"),
    "urllib.urlretrieve": (_H, "network"),
    "os.remove": (_L, "file system"),
    "os.unlink": (_L, "file system"),
    "os.rmdir": (_L, "file system"),
    "os.removedirs": (_L, "file system"),
    "os.rename": (_L, "file system"),
    "os.renames": (_L, "file system"),
    "os.replace": (_L, "file system"),
    "os.chmod": (_L, "file system"),
    "os.chown": (_L, "file system"),
    "os.symlink": (_L, "file system"),
    "os.link": (_L, "file system"),
    "os.truncate": (_L, "file system"),
    "os.putenv": (_L, "file system"),
    "shutil.rmtree": (_L, "file system"),
    "shutil.move": (_L, "file system"),
    "shutil.copy": (_L, "file system"),
    "shutil.copy2": (_L, "file system"),
    "shutil.copyfile": (_L, "file system"),
    "shutil.copytree": (_L, "file system"),
    "shutil.chown": (_L, "file system"),
}
_PREFIX: dict[str, tuple[Severity, str]] = {
    "subprocess": (_C, "process"),
    "pty": (_C, "process"),
    "commands": (_C, "process"),
    "os.exec": (_C, "process"),  # execl, execv, execve... (a name prefix, not a module)
    "os.spawn": (_C, "process"),
    "pickle": (_H, "deserialise"),
    "_pickle": (_H, "deserialise"),
    "cPickle": (_H, "deserialise"),
    "dill": (_H, "deserialise"),
    "cloudpickle": (_H, "deserialise"),
    "runpy": (_H, "import"),
    "cffi": (_H, "native"),
    "socket": (_H, "network"),
    "urllib.request": (_H, "network"),
    "urllib2": (_H, "network"),
    "http.client": (_H, "network"),
    "httplib": (_H, "network"),
    "requests": (_H, "network"),
    "httpx": (_H, "network"),
    "aiohttp": (_H, "network"),
    "ftplib": (_H, "network"),
    "smtplib": (_H, "network"),
    "telnetlib": (_H, "network"),
    "paramiko": (_H, "network"),
    "websocket": (_H, "network"),
    "websockets": (_H, "network"),
}
# Harmless constants of otherwise dangerous modules (``subprocess.PIPE``, ``pickle.HIGHEST_PROTOCOL``).
_INERT = re.compile(
    r"\.(PIPE|DEVNULL|STDOUT|HIGHEST_PROTOCOL|DEFAULT_PROTOCOL|PicklingError|UnpicklingError"
    r"|CalledProcessError|TimeoutExpired|SubprocessError|timeout|error|gaierror|herror)$"
)
_WRITE_METHODS = {
    "write_text",
    "write_bytes",
    "unlink",
    "rmdir",
    "chmod",
    "symlink_to",
    "hardlink_to",
    "rename",
}
_PY_HINT = re.compile(
    rb"^[ \t]*(import[ \t]+[A-Za-z_]|from[ \t]+[\w.]+[ \t]+import[ \t]|def[ \t]+\w+[ \t]*\(|class[ \t]+\w+[ \t]*[(:])",
    re.MULTILINE,
)


_IMPORTERS = ("builtins.__import__", "importlib.import_module")


class PyIssue:
    """One dangerous reference in Python source."""

    __slots__ = ("category", "line", "name", "severity")

    def __init__(self, severity: Severity, category: str, name: str, line: int) -> None:
        self.severity = severity
        self.category = category
        self.name = name
        self.line = line

    def __repr__(self) -> str:
        return f"PyIssue({self.severity.name}, {self.category}, {self.name!r}, line {self.line})"


def looks_like_python(head: bytes) -> bool:
    """Whether text has a Python import, ``def`` or ``class`` line (cheap; parsing decides)."""
    return _PY_HINT.search(head) is not None


def _judge(name: str) -> tuple[Severity, str] | None:
    if name in _EXACT:
        return _EXACT[name]
    if _INERT.search(name):
        return None
    for prefix, verdict in _PREFIX.items():
        if (
            name == prefix
            or name.startswith(prefix + ".")
            or (prefix.startswith("os.") and name.startswith(prefix))
        ):
            return verdict
    return None


def _const_str(node: ast.AST) -> str | None:
    """A constant string, folding ``+`` of constants and ``"".join([...])``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _const_str(node.left), _const_str(node.right)
        return None if a is None or b is None else a + b
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and len(node.args) == 1
        and isinstance(node.args[0], (ast.List, ast.Tuple))
    ):
        sep = _const_str(node.func.value)
        parts = [_const_str(e) for e in node.args[0].elts]
        if sep is not None and all(p is not None for p in parts):
            return sep.join(p for p in parts if p is not None)
    return None


class _Analyzer(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.issues: dict[str, PyIssue] = {}
        self.depth = 0  # inside how many function bodies

    def report(self, name: str, line: int, verdict: tuple[Severity, str] | None = None) -> None:
        verdict = verdict or _judge(name)
        if verdict is None or len(self.issues) >= MAX_ISSUES:
            return
        sev, cat = verdict
        if cat == "file system" and self.depth == 0:
            sev = _M
        old = self.issues.get(name)
        if old is None or sev > old.severity:
            self.issues[name] = PyIssue(sev, cat, name, line)

    # -- names -----------------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self.aliases[a.asname] = a.name
            else:
                self.aliases[a.name.split(".")[0]] = a.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if node.level:
            return  # a sibling module of the repository: scanned as its own file
        for a in node.names:
            full = f"{mod}.{a.name}"
            if a.name == "*":
                for key, (_sev, _cat) in _EXACT.items():
                    if key.startswith(mod + "."):
                        self.aliases.setdefault(key[len(mod) + 1 :], key)
                self.report(mod, node.lineno)
                continue
            self.aliases[a.asname or a.name] = full
            self.report(full, node.lineno)

    def resolve(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id in ("eval", "exec", "compile", "__import__", "breakpoint", "open", "getattr"):
                return f"builtins.{node.id}"
            if node.id == "__builtins__":
                return "builtins"
            return None
        if isinstance(node, ast.Subscript):  # __builtins__["eval"], sys.modules["os"]
            base = self.resolve(node.value)
            key = _const_str(node.slice)
            if base is None or key is None:
                return None
            base = base.removesuffix(".__dict__")  # builtins.__dict__["exec"], os.__dict__["system"]
            if base != "builtins" and base != "sys.modules" and "." not in base:
                return f"{base}.{key}"
            return key if base == "sys.modules" else f"{base}.{key}" if base == "builtins" else None
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return None if base is None else f"{base}.{node.attr}"
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
        ):
            base = self.resolve(node.args[0])
            attr = _const_str(node.args[1])
            return None if base is None or attr is None else f"{base}.{attr}"
        if isinstance(node, ast.Call) and node.args and self.resolve(node.func) in _IMPORTERS:
            return _const_str(node.args[0])
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        """``s = os.system`` and ``m = importlib.import_module("os")`` make aliases too."""
        target = self.resolve(node.value)
        if target is not None:
            for t in node.targets:
                if isinstance(t, ast.Name):
                    self.aliases[t.id] = target
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            name = self.resolve(node)
            if name is not None and name not in ("builtins.open", "builtins.getattr"):
                self.report(name, node.lineno)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        name = self.resolve(node)
        if name is not None:
            self.report(name, node.lineno)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.resolve(node)
        if name is not None:
            self.report(name, node.lineno)
            return  # the longest chain decides (``subprocess.PIPE`` is inert, ``subprocess`` alone is not)
        self.generic_visit(node)

    # -- scopes and calls ------------------------------------------------------------------------------

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_Call(self, node: ast.Call) -> None:
        name = self.resolve(node.func)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if name in ("builtins.open", "io.open", "codecs.open"):
            mode_node = node.args[1] if len(node.args) > 1 else kw.get("mode")
            mode = _const_str(mode_node) if mode_node is not None else "r"
            if mode is None or any(c in mode for c in "wax+"):
                self.report("open(write)", node.lineno, (_L, "file system"))
        elif name == "builtins.getattr" and len(node.args) >= 2:
            target = self.resolve(node)
            if target is not None:
                self.report(target, node.lineno)
            elif _const_str(node.args[1]) is None:
                base = self.resolve(node.args[0])
                if base is not None and _judge(base + ".system") is not None:
                    self.report(f"{base}.<computed>", node.lineno, (_H, "import"))
        elif name in ("builtins.__import__", "importlib.import_module"):
            target = _const_str(node.args[0]) if node.args else None
            if target is not None:
                self.report(target, node.lineno, _judge(target) or (_L, "import"))
                for arg in node.args[1:]:
                    self.visit(arg)
                return
        elif name == "torch.load":
            wo = kw.get("weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                self.report("torch.load", node.lineno, (_H, "deserialise"))
        elif name == "numpy.load":
            ap = kw.get("allow_pickle")
            if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                self.report("numpy.load(allow_pickle=True)", node.lineno, (_H, "deserialise"))
        elif name == "yaml.load":
            loader = kw.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
            lname = self.resolve(loader) if loader is not None else None
            if lname is None or not lname.endswith(("SafeLoader", "CSafeLoader", "BaseLoader")):
                self.report("yaml.load", node.lineno, (_H, "deserialise"))
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _WRITE_METHODS and name is None:
            self.report(f"<path>.{node.func.attr}", node.lineno, (_L, "file system"))
        self.generic_visit(node)


def analyze_python(source: str | bytes) -> list[PyIssue] | str:
    """The dangerous references of a Python module, or a one-line reason when it cannot be parsed."""
    if len(source) > MAX_SOURCE:
        return f"more than {MAX_SOURCE} bytes"
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return f"syntax error at line {err.lineno}"
    except (ValueError, RecursionError, MemoryError) as err:
        return f"{type(err).__name__}"
    a = _Analyzer()
    try:
        a.visit(tree)
    except RecursionError:
        return "nested too deeply to analyse"
    return sorted(a.issues.values(), key=lambda i: (-int(i.severity), i.line))


def scan_python_source(
    source: bytes, *, entry: str, report: Callable[[Hit], None], known_python: bool = False
) -> bool:
    """Analyse Python source and report its dangerous references.

    Args:
        source: the file's bytes.
        entry: where it is (for the hits).
        report: hit sink.
        known_python: the file is named as Python (``.py``, an ``auto_map`` module): a parse failure or
            an oversized file is then reported; for other text it only means the text is not Python.

    Returns:
        Whether the text was analysed as Python.
    """
    got = analyze_python(source)
    if isinstance(got, str):
        if known_python:
            report(
                Hit(
                    Severity.MEDIUM,
                    "Python source not analysed",
                    f"{got}; the module would still be imported",
                    kind="python",
                    entry=entry,
                    atlas=ATLAS_ARTIFACT,
                )
            )
        return False
    for issue in got:
        report(
            Hit(
                issue.severity,
                f"Python code uses {issue.name} ({issue.category})",
                f"line {issue.line}: importing or running this module reaches {issue.name}; "
                "trust_remote_code and archive loaders run such modules",
                kind="python",
                entry=entry,
                offset=None,
                callable=issue.name,
                atlas=ATLAS_ARTIFACT if issue.severity >= Severity.MEDIUM else None,
                remediation="Review the code before loading with trust_remote_code; prefer models that "
                "need no remote code.",
            )
        )
    return True
