"""Names and tables behind the TorchScript resolver (``_ts_judge.py``): what is allowed, what is denied.

Values are tracked abstractly: ``DATA`` is a runtime value (a tensor, a number, a module object), any
other string is a dotted reference the importer resolves statically (``torch``, ``torch.add``,
``ops.aten``, ``__torch__.torch.nn.functional.relu``, ``builtin.len``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._torch_ops import TORCH_OPS
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = [
    "ALLOWED_CLASS_NAMESPACES",
    "ALLOWED_NAMESPACES",
    "ATTRIBUTE",
    "BUILTINS",
    "BUILTIN_METHODS",
    "CLASS_BASES",
    "CLASS_LISTS",
    "DATA",
    "DENIED_NAMESPACES",
    "DENIED_OPS",
    "DUNDER_METHODS",
    "GLOBALS",
    "NAMESPACES",
    "NOT_OPERATORS",
    "PYTHON_ESCAPES",
    "REMOTE_OPS",
    "SPECIAL",
    "TYPE_NAMES",
    "Note",
    "dotted",
    "dunder",
    "is_name",
    "ts_hit",
    "words",
]


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``."""
    return frozenset(text.split())


DATA = "<data>"

DENIED_OPS = frozenset({"from_file", "save", "load", "_save", "_load", "load_library", "_load_for_mobile"})
"""Operator names that read or write files or load code (``aten::from_file`` maps and overwrites files)."""
REMOTE_OPS = frozenset({"rpc_async", "rpc_remote", "rpc_sync"})
"""Operators that call other processes over the network (``prim::rpc_*``)."""
DENIED_NAMESPACES = frozenset({"debugprims"})
"""Operator namespaces whose operators read files (``debugprims::load_tensor``)."""
ALLOWED_NAMESPACES = frozenset(TORCH_OPS)
"""Operator namespaces shipped with torch that need no extra library and do no I/O."""
ALLOWED_CLASS_NAMESPACES = frozenset({"quantized", "sparse", "rnn", "mkldnn", "xnnpack", "profiler"})
"""``torch.classes`` namespaces of torch's own packed-parameter classes; others (``c10d``, ``dist_rpc``,
custom libraries) reach the network or code outside the archive."""
NOT_OPERATORS = frozenset({"_C", "classes", "ops", "jit", "_ops", "library", "utils", "cuda", "hub"})

BUILTINS = words(
    "print tuple float complex int bool str getattr hasattr isinstance len hex oct round hash id min max "
    "abs all any divmod sum list dict ord chr bin pow range zip enumerate sorted AssertionError "
    "_to_tensor"
)
PYTHON_ESCAPES = words(
    "__import__ eval exec open compile globals locals vars input breakpoint setattr delattr __builtins__ "
    "importlib os sys subprocess socket shutil pathlib io builtins"
)
"""Python names that reach files, processes or imports; TorchScript has none of them."""
SPECIAL = frozenset({"annotate", "unchecked_cast", "uninitialized", "fork", "awaitable"})
GLOBALS = {"torch": "torch", "ops": "ops", "__torch__": "__torch__", "CONSTANTS": DATA}
GLOBALS.update({n: DATA for n in ("inf", "nan", "infj", "nanj")})
GLOBALS.update({n: f"builtin.{n}" for n in BUILTINS | SPECIAL})
TYPE_NAMES = words(
    "Tensor int float bool str complex NoneType List Dict Tuple Optional Union Final Future Await RRef Any "
    "Device Generator Stream Storage Layout ScalarType MemoryFormat QScheme number Scalar Module NamedTuple "
    "Enum Interface Capsule Callable"
)
CLASS_BASES = frozenset({"Module", "NamedTuple", "Enum", "Interface", "object"})
CLASS_LISTS = frozenset({"__parameters__", "__buffers__", "__constants__", "__annotations__"})
ATTRIBUTE = re.compile(r"[A-Za-z0-9_]+")
"""What ``getattr`` may name: identifiers and the indices of module containers (``getattr(self, "0")``)."""
DUNDER_METHODS = words(
    "__init__ __getstate__ __setstate__ __enter__ __exit__ __len__ __getitem__ __setitem__ __contains__ "
    "__str__ __repr__ __hash__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __bool__ __int__ __float__"
)
"""Methods the printer calls on objects it constructs (``(h).__init__(3)``) or that classes define."""
BUILTIN_METHODS = words(
    "tolist wait done value then keys values items get pop append extend insert remove clear copy "
    "setdefault update index count sort reverse popitem format join split strip startswith endswith "
    "lower upper replace find float int long double half bool byte char short cpu cuda bfloat16 forward"
)
"""Methods of builtin types that the importer handles without an operator of that name."""
NAMESPACES = frozenset({"torch", "ops", "__torch__", "__torch__.torch", "__torch__.torch.classes"})


@dataclass(frozen=True)
class Note:
    """One observation inside an entry, before it becomes a ``Hit``."""

    severity: Severity
    title: str
    name: str
    line: int


_REMEDIATION = "Load only the state dict (weights) and rebuild the module from reviewed code."


def ts_hit(note: Note, entry: str, detail: str = "", *, error: bool = False) -> Hit:
    """The ``Hit`` of a note."""
    where = f"line {note.line}: " if note.line else ""
    what = f"{note.name!r}" if note.name else ""
    text = f"{where}{what}{'; ' if what and detail and not detail.startswith(' ') else ''}{detail}"
    return Hit(
        note.severity,
        note.title,
        text or "TorchScript runs this source when the module is loaded or called",
        kind="torchscript",
        entry=entry,
        callable=note.name or None,
        atlas=ATLAS_ARTIFACT,
        remediation=_REMEDIATION,
        error=error,
    )


def dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in ("__torch__",)


def is_name(targets: list[ast.expr], name: str) -> bool:
    return len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id == name


def dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
