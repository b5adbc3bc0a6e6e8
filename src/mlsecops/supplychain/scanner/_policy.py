"""Allow-list and deny-list that judge every global a pickle references.

A pickle can only run code by naming a callable (``GLOBAL``, ``STACK_GLOBAL``, ``INST``) and calling it.
The walker in ``_pickle.py`` resolves each name to ``module.qualname``; this module says what that name
is worth:

- ``DENY``: a known way to run code, touch the file system, the network or other processes, import
  modules, introspect objects (``getattr`` chains reach anything) or load another pickle. Critical.
- ``ALLOW``: what real checkpoints need: tensor and storage rebuilders, NumPy reconstructors, plain
  containers, scikit-learn and other estimator *classes*, inert names real code pickles (``__future__``
  features, ``collections.abc`` types, pure builtins such as ``len`` or ``max``).
- ``UNKNOWN``: everything else (for example the ``__main__.MyNet`` of a full-model checkpoint). Not
  proof of an attack, but nothing we would load blindly either.

Names are normalised first: ``posix.system`` and ``nt.system`` are ``os.system``, ``__builtin__`` is
``builtins``, and a protocol-4 dotted name (``builtins`` + ``getattr.__call__``) is judged by every
prefix, so ``torch.serialization.load`` cannot hide behind ``torch`` + ``serialization.load``. The
protocol 0-2 renames the unpickler applies itself (``_compat_pickle``: ``__builtin__.reduce`` is
``functools.reduce``, ``thread`` is ``_thread``) are judged too, and the worse judgement wins.

Precedence (``judge``; the first rule that matches decides, one test per rule in
``tests/unit/supplychain/test_scanner_pickle.py``):

1. A name that is not a dotted Python identifier: ``DENY`` (nothing overrides it).
2. The user's deny-list (``ScanPolicy.deny``): ``DENY``.
3. Built-in exact entries, reviewed one by one: ``_ALLOW_EXACT`` and the inert names (``ALLOW``), the
   TorchScript namespace ``__torch__.`` (``ALLOW``), and ``_UNKNOWN_EXACT`` (``UNKNOWN``, or ``ALLOW``
   when the user's allow-list names it). They are the exceptions to the rules below (``uuid.UUID`` in
   the denied ``uuid`` module, ``functools.partial`` in the denied ``functools``).
4. Built-in deny rules (modules, builtins, dunder access, run/load/exec words, private modules, attribute
   walks): ``DENY``, unless the user's ``force_allow`` lists the name: then ``ALLOW``, and every scan
   that meets it reports the override (a plain ``allow`` entry never downgrades a deny).
5. The user's allow-list (``ScanPolicy.allow``): ``ALLOW``.
6. A dotted name that walks through a module or function attribute: ``UNKNOWN``.
7. Built-in allow patterns (torch rebuilders and dtypes, NumPy scalars and math, estimator classes,
   scikit-learn metrics, Cython reconstructors): ``ALLOW``.
8. Anything else: ``UNKNOWN``.

Users extend the lists with a policy file (``load_policy``; ``mlsecops scan --policy FILE``)::

    allow: [mypkg.models.MyNet, "mypkg.layers.*"]    # exact names, or a module prefix with ".*"
    deny: ["somepkg.unsafe.*"]
    force_allow: [builtins.getattr]                   # overrides a built-in deny; reported every time
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections.abc
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from mlsecops.core.errors import ConfigError

__all__ = ["Judgement", "Rule", "ScanPolicy", "judge", "load_policy", "normalise"]


class Rule(Enum):
    """The three possible judgements of a global."""

    ALLOW = "allow"
    DENY = "deny"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Judgement:
    """The judgement of one resolved global."""

    rule: Rule
    """Allow, deny or unknown."""
    name: str
    """The normalised ``module.qualname``."""
    reason: str
    """Why (the category of a deny-list hit, or the allow-list entry)."""
    forced: bool = False
    """Allowed only because the user's ``force_allow`` overrode a built-in deny."""


_POLICY_KEYS = ("allow", "deny", "force_allow")
_POLICY_ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?$")
MAX_POLICY_ENTRIES = 10_000
"""Entries per list of a policy file (a policy is a short reviewed list, not a data set)."""


@dataclass(frozen=True)
class ScanPolicy:
    """User extensions of the built-in lists (see the module docstring for their precedence).

    Entries are ``module.qualname`` (exact) or ``module.*`` (that module and everything under it); names
    are normalised as the walker normalises what it reads (``posix.system`` is ``os.system``).
    """

    allow: frozenset[str] = field(default_factory=frozenset)
    deny: frozenset[str] = field(default_factory=frozenset)
    force_allow: frozenset[str] = field(default_factory=frozenset)
    """Names allowed even though the built-in deny-list denies them; each use is reported."""

    @classmethod
    def from_mapping(cls, data: object, *, what: str = "scan policy") -> ScanPolicy:
        """Build a policy from plain data (a parsed YAML or JSON document).

        Raises:
            ConfigError: not a mapping, an unknown key, or an entry that is not a dotted name.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{what}: expected a mapping with keys {', '.join(_POLICY_KEYS)}")
        unknown = sorted(str(k) for k in data if k not in _POLICY_KEYS)
        if unknown:
            raise ConfigError(
                f"{what}: unknown key(s) {', '.join(unknown)}; expected {', '.join(_POLICY_KEYS)}"
            )
        lists: dict[str, frozenset[str]] = {}
        for key in _POLICY_KEYS:
            lists[key] = frozenset(_entries(data.get(key), f"{what}: {key}"))
        return cls(allow=lists["allow"], deny=lists["deny"], force_allow=lists["force_allow"])


def _entries(raw: object, what: str) -> Iterable[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{what} must be a list of names")
    if len(raw) > MAX_POLICY_ENTRIES:
        raise ConfigError(f"{what} has {len(raw)} entries; the limit is {MAX_POLICY_ENTRIES}")
    out = []
    for item in raw:
        if not isinstance(item, str) or not _POLICY_ENTRY.match(item):
            shown = repr(item)[:80]
            raise ConfigError(f"{what}: {shown} is not a dotted name (module.qualname or module.*)")
        if item.endswith(".*"):
            out.append(normalise(item[:-2], "") + ".*")
        else:
            module, _, name = item.rpartition(".")
            out.append(normalise(module, name) if module else item)
    return out


def load_policy(path: str | Path) -> ScanPolicy:
    """Read a scan policy file (YAML or JSON, through the bounded reader of ``core.inputs``).

    Raises:
        InputError: the file is missing, not a regular file, too large or hostile YAML.
        ConfigError: the content is not a valid policy.
    """
    from mlsecops.core.inputs import load_yaml

    data, _raw = load_yaml(path, what="scan policy file")
    return ScanPolicy.from_mapping(data, what=f"scan policy {path}")


def _listed(full: str, entries: frozenset[str]) -> bool:
    """Whether ``full`` is an entry or lies under a ``module.*`` entry."""
    if not entries:
        return False
    if full in entries:
        return True
    parts = full.split(".")
    return any(".".join(parts[:i]) + ".*" in entries for i in range(1, len(parts)))


_MODULE_ALIASES = {
    "__builtin__": "builtins",
    "__builtins__": "builtins",
    "posix": "os",
    "nt": "os",
    "posixpath": "os.path",
    "ntpath": "os.path",
    "_io": "io",
    "_operator": "operator",
    "_functools": "functools",
    "copy_reg": "copyreg",
    "_pickle": "pickle",
    "cPickle": "pickle",
    "_posixsubprocess": "subprocess",
    "_subprocess": "subprocess",
    "_winapi": "subprocess",
    "numpy._core": "numpy.core",
    "sklearn.externals.joblib": "joblib",
}

# Whole modules (and everything under them) that have no business in a model file.
_DENY_MODULES: dict[str, str] = {
    "os": "process/file system",
    "sys": "interpreter internals",
    "subprocess": "process execution",
    "pty": "process execution",
    "shutil": "file system",
    "socket": "network",
    "ssl": "network",
    "asyncio": "process/network",
    "multiprocessing": "process execution",
    "concurrent": "process execution",
    "threading": "thread creation",
    "_thread": "thread creation",
    "signal": "process control",
    "ctypes": "native code",
    "_ctypes": "native code",
    "cffi": "native code",
    "importlib": "module import",
    "imp": "module import",
    "pkgutil": "module import",
    "zipimport": "module import",
    "runpy": "code execution",
    "code": "code execution",
    "codeop": "code execution",
    "compileall": "code execution",
    "py_compile": "code execution",
    "marshal": "code object loading",
    "types": "code object construction",
    "inspect": "introspection",
    "gc": "introspection",
    "pickle": "nested pickle loading",
    "pickletools": "pickle tooling",
    "shelve": "nested pickle loading",
    "dill": "nested pickle loading",
    "cloudpickle": "nested pickle loading",
    "jsonpickle": "nested pickle loading",
    "pip": "package installation",
    "setuptools": "package installation",
    "distutils": "package installation",
    "ensurepip": "package installation",
    "venv": "package installation",
    "webbrowser": "process execution",
    "urllib": "network",
    "urllib3": "network",
    "http": "network",
    "httpx": "network",
    "requests": "network",
    "aiohttp": "network",
    "ftplib": "network",
    "smtplib": "network",
    "telnetlib": "network",
    "xmlrpc": "network",
    "poplib": "network",
    "imaplib": "network",
    "nntplib": "network",
    "tempfile": "file system",
    "glob": "file system",
    "fileinput": "file system",
    "pathlib": "file system",
    "linecache": "file system",
    "bdb": "code execution",
    "pdb": "code execution",
    "trace": "code execution",
    "timeit": "code execution",
    "profile": "code execution",
    "cProfile": "code execution",
    "doctest": "code execution",
    "unittest": "code execution",
    "idlelib": "code execution",
    "lib2to3": "code execution",
    "builtins.exec": "code execution",
    "sysconfig": "interpreter internals",
    "site": "interpreter internals",
    "platform": "process execution",
    "uuid": "process execution",
    "ast": "code execution",
    "dis": "introspection",
    "operator": "introspection (attrgetter/methodcaller chains)",
    "functools": "call indirection (partial/reduce)",
    "itertools": "call indirection (starmap)",
    "copyreg._reconstructor_with_init": "call indirection",
    "torch.hub": "remote code download",
    "torch.jit": "TorchScript loading/compilation",
    "torch._inductor": "code compilation",
    "torch._dynamo": "code compilation",
    "torch.utils.cpp_extension": "native code compilation",
    "torch.utils.data.datapipes": "code execution",
    "torch.package": "nested pickle loading",
    "torch.fx": "code generation",
    "torch.distributed": "network/process",
    "torch.multiprocessing": "process execution",
    "torch.testing": "code execution",
    "torch._ops": "operator dispatch",
    "torch.ops": "operator dispatch",
    "torch.library": "operator registration",
    "torch._C._jit": "TorchScript internals",
    "torch.serialization": "nested pickle loading",
    "numpy.load": "nested pickle loading",
    "numpy.lib.npyio": "nested pickle loading",
    "numpy.lib.format": "nested pickle loading",
    "numpy.testing": "code execution",
    "numpy.distutils": "package build",
    "numpy.f2py": "native code compilation",
    "numpy.ctypeslib": "native code",
    "joblib.load": "nested pickle loading",
    "joblib.numpy_pickle.load": "nested pickle loading",
    "joblib.parallel": "process execution",
    "joblib._parallel_backends": "process execution",
    "joblib.externals": "nested pickle loading",
    "sklearn.utils._testing": "code execution",
    "pandas.read_pickle": "nested pickle loading",
    "pandas.io": "file system/network",
    "keras.models.load_model": "nested model loading",
    "tensorflow.io": "file system",
    "tensorflow.keras.models.load_model": "nested model loading",
    "IPython": "code execution",
    "jinja2": "template code execution",
    "mako": "template code execution",
    "yaml": "unsafe deserialisation",
    "numexpr": "code execution",
    "sympy": "code execution (sympify)",
    "pydoc": "code execution",
    "logging.config": "code execution",
    "email": "network",
    "smtpd": "network",
    "socketserver": "network",
    "wsgiref": "network",
    "tarfile": "file system",
    "zipfile": "file system",
    "bz2.open": "file system",
    "gzip.open": "file system",
    "lzma.open": "file system",
    "io.open": "file system",
    "io.FileIO": "file system",
    "io.open_code": "file system",
    "codecs.open": "file system",
    "mmap": "file system",
    "dbm": "file system",
    "sqlite3": "file system",
    "cmd": "code execution",
    "pydantic": "call indirection",
    "_sitebuiltins": "interpreter internals",
    "atexit": "exit hooks",
    "commands": "process execution",
    "popen2": "process execution",
    "mlflow": "code execution (project runners)",
    "torch.utils.collect_env": "process execution",
    "torch.utils.bottleneck": "code execution",
    "torch._dynamo.guards": "code execution",
    "__main__.exec": "code execution",
    "pkg_resources": "module import (entry points)",
    "test": "code execution (CPython test helpers run scripts)",
    "zipapp": "code execution",
    "tkinter": "code execution",
    "huggingface_hub": "remote download",
    "transformers.dynamic_module_utils": "remote code loading",
    "keras.utils.get_file": "remote download / file write",
    "keras.src.utils.file_utils": "remote download / file write",
    "keras.config": "safe_mode switch",
    "keras.src.saving": "nested model loading",
    "keras.saving": "nested model loading",
    "sklearn.datasets": "network/file system (fetch_*, load_svmlight_file)",
}

_DENY_BUILTINS: dict[str, str] = {
    name: reason
    for reason, names in {
        "code execution": ("eval", "exec", "compile", "breakpoint", "input", "help"),
        "module import": ("__import__",),
        "introspection": ("getattr", "setattr", "delattr", "globals", "locals", "vars", "dir", "hasattr"),
        "file system": ("open", "file", "execfile"),
        "call indirection": ("map", "filter", "apply", "reload"),
        "process control": ("exit", "quit"),
    }.items()
    for name in names
}

# Exact names that real checkpoints reference.
_ALLOW_EXACT = frozenset(
    {
        "builtins.set",
        "builtins.frozenset",
        "builtins.bytearray",
        "builtins.bytes",
        "builtins.complex",
        "builtins.slice",
        "builtins.range",
        "builtins.list",
        "builtins.dict",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.str",
        "builtins.NoneType",
        "builtins.Ellipsis",
        "builtins.NotImplemented",
        "builtins.object",
        "types.SimpleNamespace",
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensor_from_id",
        "torch.jit._pickle.restore_type_tag",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.Counter",
        "collections.deque",
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "_codecs.encode",
        "codecs.encode",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "re._compile",
        "argparse.Namespace",
        "enum.Enum",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",
        "numpy.ma.core._mareconstruct",
        "numpy.ma.core.MaskedArray",
        "numpy.ma.MaskedArray",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle._unpickle_bit_generator",
        "numpy.random.mtrand.RandomState",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random._generator.Generator",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.mtrand._rand",
        "scipy.sparse._csr.csr_matrix",
        "scipy.sparse._csc.csc_matrix",
        "scipy.sparse._coo.coo_matrix",
        "scipy.sparse._csr.csr_array",
        "scipy.sparse._csc.csc_array",
        "scipy.sparse.csr.csr_matrix",
        "scipy.sparse.csc.csc_matrix",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle_compat.NDArrayWrapper",
        "joblib.numpy_pickle_compat.ZNDArrayWrapper",
        "torch.Size",
        "torch.device",
        "torch.dtype",
        "torch.Tensor",
        "torch._tensor._rebuild_from_type_v2",
        "torch._tensor._rebuild_from_type",
        "torch.nn.parameter.Parameter",
        "torch.nn.parameter.Buffer",
        "torch.nn.parameter.UninitializedParameter",
        "torch.serialization._get_layout",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.storage._load_from_bytes",
        "torch.nn.modules.module._IncompatibleKeys",
        "torch.per_tensor_affine",
        "torch.per_channel_affine",
        "torch.strided",
        "torch.sparse_coo",
        "torch.sparse_csr",
        "torch._C._nn.gelu",
        "torch.nn.functional.relu",
        "torch.nn.functional.gelu",
        "torch.optim.adam.Adam",
        "torch.optim.sgd.SGD",
        "torch.optim.adamw.AdamW",
        "torch.amp.grad_scaler.GradScaler",
    }
)

# Prefixes under which every *class-like* name (first letter upper case) is allowed: estimator classes.
_ALLOW_CLASS_PREFIXES = (
    "sklearn.",
    "xgboost.",
    "lightgbm.",
    "catboost.",
    "scipy.sparse.",
    "scipy.stats._distn_infrastructure.",
    "torch.nn.modules.",
    "torch.optim.",
    "numpy.random.",
    "pandas.core.",
    "imblearn.",
    "statsmodels.",
    "transformers.models.",
    "transformers.configuration_utils.",
)

_TORCH_REBUILD = re.compile(r"^torch\._utils\._rebuild_[a-z0-9_]+$")
_TORCH_STORAGE = re.compile(r"^torch\.(cuda\.)?[A-Z][A-Za-z0-9]*Storage$")
_TORCH_DTYPE = re.compile(
    r"^torch\.(u?int(8|16|32|64)|float(16|32|64)|bfloat16|half|double|long|short|bool|complex(32|64|128)"
    r"|cfloat|cdouble|qint8|quint8|qint32|quint4x2|float8_e4m3fn|float8_e5m2|bits8|contiguous_format"
    r"|channels_last|preserve_format)$"
)
_NUMPY_MATH = re.compile(
    r"^numpy\.(log|log1p|log2|log10|exp|expm1|exp2|sqrt|cbrt|square|absolute|abs|fabs|sign|sin|cos|tan|tanh"
    r"|sinh|cosh|arcsin|arccos|arctan|arcsinh|arctanh|floor|ceil|rint|round|clip|negative|reciprocal|maximum"
    r"|minimum|add|subtract|multiply|divide|true_divide|power|float_power|mean|median|sum|std|var|max|min|amax"
    r"|amin|nanmean|nanmedian|nanstd|nansum|nanmax|nanmin|argmax|argmin|isnan|isfinite|logical_not)$"
)
_ALLOW_FUNCTION_PREFIXES = (
    "sklearn.metrics._classification.",
    "sklearn.metrics._regression.",
    "sklearn.metrics._ranking.",
    "sklearn.metrics._scorer.",
    "sklearn.metrics.pairwise.",
    "sklearn.metrics.cluster.",
    "sklearn.feature_selection._univariate_selection.",
    "sklearn.feature_selection._mutual_info.",
    "sklearn.preprocessing._function_transformer._identity",
)
_NUMPY_SCALAR = re.compile(
    r"^numpy\.(dtypes\.[A-Za-z0-9]+DType|u?int(8|16|32|64)?|float(16|32|64|128)?|complex(64|128|256)?|bool_?"
    r"|object_|str_|bytes_|void|longlong|ulonglong|intc|uintc|intp|uintp|half|single|double|longdouble"
    r"|datetime64|timedelta64|generic|number)$"
)


def normalise(module: str, name: str) -> str:
    """Return the canonical ``module.qualname`` of a global, with module aliases folded.

    Args:
        module: the module part as the pickle spelled it.
        name: the (possibly dotted) qualified name part.

    Returns:
        The dotted full name, e.g. ``os.system`` for ``posix`` + ``system``.
    """
    module = module.strip()
    name = name.strip()
    for alias in sorted(_MODULE_ALIASES, key=len, reverse=True):
        if module == alias or module.startswith(alias + "."):
            module = _MODULE_ALIASES[alias] + module[len(alias) :]
            break
    return f"{module}.{name}" if name else module


def _deny_reason(full: str) -> str | None:
    parts = full.split(".")
    # Every prefix is judged: "torch" + "serialization.load" is torch.serialization.load.
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in _DENY_MODULES:
            return _DENY_MODULES[prefix]
    if parts[0] == "builtins" and len(parts) >= 2 and parts[1] in _DENY_BUILTINS:
        return _DENY_BUILTINS[parts[1]]
    # Dunder access anywhere past the first attribute reaches code objects and globals
    # (``torch.load.__globals__``, ``x.__reduce__``, ``__class__.__subclasses__``).
    if any(p.startswith("__") and p.endswith("__") and p not in _SAFE_DUNDERS for p in parts[1:]):
        return "dunder attribute access"
    if any(p in _DENY_WORDS for p in parts[1:]) or (len(parts) > 1 and _DENY_PREFIX.match(parts[-1])):
        return "code execution, import or nested loading"
    # A dangerous module bound as an attribute of another (``collections.abc.sys``, ``typing.os``).
    if len(parts) > 1 and parts[-1] in _MODULE_ATTRS:
        return f"attribute reaches the {parts[-1]} module"
    # Private interpreter modules (``_interpreters.run_string``, ``_posixsubprocess.fork_exec``...).
    if parts[0].startswith("_") and parts[0] not in {"_codecs", "__main__", "__torch__"}:
        return "private interpreter module"
    return None


_DENY_WORDS = frozenset(
    {
        "eval",
        "exec",
        "system",
        "popen",
        "spawn",
        "spawnv",
        "spawnv_passfds",
        "load",
        "loads",
        "compile",
        "run",
        "run_path",
        "run_module",
        "runcode",
        "runsource",
        "call",
        "check_call",
        "check_output",
        "urlopen",
        "urlretrieve",
        "write_file",
        "read_csv",
        "read_pickle",
        "_run_pip",
        "import_module",
        "resolve_name",
        "_run_entry_point",
        "getattr",
        "__import__",
        "fork_exec",
        "execv",
        "execve",
        "execl",
        "startfile",
        "create_subprocess_exec",
        "create_subprocess_shell",
        "run_string",
    }
)


# Function names that load, run or fetch whatever they are given (``load_config``, ``execfile``,
# ``unpickle_...``, ``fetch_openml``): no model file needs to call one.
_DENY_PREFIX = re.compile(r"^_*(load|exec|unpickle|deserializ|spawn|popen|system|fork|fetch)")

# Short names that modules bind to other modules (``import numpy as np``), followed when a dotted name
# walks through them.
_ATTR_MODULE_ALIASES = {"np": "numpy", "pd": "pandas", "sp": "scipy", "tf": "tensorflow", "th": "torch"}


def _walk_reason(name: str) -> str | None:
    """Judge the attribute walk of a dotted qualified name (protocol 4 resolves ``a.b.c`` with getattr).

    ``sklearn.base`` + ``np.f2py.subprocess.Popen`` is ``subprocess.Popen`` reached through module
    attributes; every tail of the walk is judged as if it were a module path of its own.
    """
    parts = name.split(".")
    for i in range(len(parts) - 1):
        head = _ATTR_MODULE_ALIASES.get(parts[i], parts[i])
        tail = normalise(head, ".".join(parts[i + 1 :]))
        tparts = tail.split(".")
        for k in range(len(tparts), 0, -1):
            prefix = ".".join(tparts[:k])
            if prefix in _DENY_MODULES:
                return f"attribute walk reaches {tail} ({_DENY_MODULES[prefix]})"
        if tparts[0] == "builtins" and len(tparts) > 1 and tparts[1] in _DENY_BUILTINS:
            return f"attribute walk reaches {tail} ({_DENY_BUILTINS[tparts[1]]})"
    return None


def _walks_through_module(name: str) -> bool:
    """Whether a dotted qualified name passes through a lower-case (module or function) attribute.

    Classes nest as ``Outer.Inner`` and methods hang off classes (``Model.from_config``); a lower-case
    part before the last one is a module attribute or a function, which no class reference needs.
    """
    parts = name.split(".")
    return any(p.lstrip("_")[:1].islower() for p in parts[:-1])


_UNKNOWN_EXACT = frozenset({"functools.partial", "builtins.type", "builtins.property", "builtins.super"})

_SAFE_DUNDERS = frozenset({"__newobj__", "__newobj_ex__", "__randomstate_ctor", "__bit_generator_ctor"})

# Builtins that only compute on their arguments: no import, no attribute access by name, no I/O, no
# call of an argument that pickle could not name anyway. (``iter`` is not here: ``iter(f, sentinel)``
# calls ``f`` forever; nor ``pow``: ``pow(10, 10**9)`` computes for minutes. Huge sizes given to the
# ones here, ``max(range(10**15))``, are reported by the walker as denial of service.)
_PURE_BUILTINS = frozenset(
    {
        "abs", "all", "any", "ascii", "bin", "callable", "chr", "divmod", "enumerate", "format", "hash",
        "hex", "isinstance", "issubclass", "len", "max", "min", "oct", "ord", "repr", "reversed", "round",
        "sorted", "sum", "zip",
    }
)  # fmt: skip
_BUILTIN_EXCEPTIONS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)
"""Exception classes (real code pickles exception instances; constructing one runs nothing)."""
_INERT_EXACT = frozenset(
    {f"builtins.{n}" for n in _PURE_BUILTINS | _BUILTIN_EXCEPTIONS}
    | {f"collections.abc.{n}" for n in collections.abc.__all__}
    | {f"__future__.{n}" for n in __import__("__future__").all_feature_names}
    | {"__future__._Feature"}
)
"""Inert globals real code pickles: pure builtins, exception classes, ``collections.abc`` types and
``__future__`` features. Exact names only: ``collections.abc.sys`` or ``__future__.os`` are not here."""
_MODULE_ATTRS = frozenset(
    {"os", "sys", "subprocess", "builtins", "importlib", "ctypes", "pickle", "marshal", "socket", "shutil"}
    | {"runpy", "pty", "posix", "nt", "_posixsubprocess", "_io", "io", "types", "__builtins__", "_thread"}
)
"""Dangerous modules that other modules bind as attributes (``collections.abc.sys``, ``typing.sys``)."""
_RANK = {"allow": 0, "unknown": 1, "deny": 2}
_PY3_COMPAT_MODULES = frozenset({"dbm", "test"})
"""Modules ``_compat_pickle`` renames that also exist in Python 3: both names are judged, the worse wins."""


def _compat_name(module: str, name: str) -> tuple[str, str] | None:
    """The (module, name) the unpickler reads for a protocol 0-2 name (``_compat_pickle``), if renamed."""
    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped is not None:
        return mapped
    if module in _compat_pickle.IMPORT_MAPPING:
        return _compat_pickle.IMPORT_MAPPING[module], name
    return None


def judge(module: str, name: str, policy: ScanPolicy | None = None) -> Judgement:
    """Judge one global by its resolved name (precedence: the module docstring).

    Args:
        module: module part as written in the pickle.
        name: qualified name part as written in the pickle.
        policy: the user's extensions of the built-in lists.

    Returns:
        The judgement. A name the unpickler renames for protocols 0-2 is judged under both names and
        the worse judgement is returned.
    """
    j = _judge(module, name, policy)
    mapped = _compat_name(module, name)
    if mapped is None:
        return j
    m = _judge(mapped[0], mapped[1], policy)
    m = Judgement(m.rule, m.name, f"{m.reason}; the unpickler reads {j.name} as {m.name}", m.forced)
    if module.split(".")[0] not in _PY3_COMPAT_MODULES:
        return m  # a Python 2 name: only the renamed one can be imported
    return m if _RANK[m.rule.value] >= _RANK[j.rule.value] else j


@functools.lru_cache(maxsize=8192)
def _judge(module: str, name: str, policy: ScanPolicy | None) -> Judgement:
    full = normalise(module, name)
    # 1. malformed names
    if not _looks_like_name(module) or not _looks_like_name(name):
        return Judgement(Rule.DENY, full, "malformed global name")
    # 2. the user's deny-list
    if policy is not None and _listed(full, policy.deny):
        return Judgement(Rule.DENY, full, "denied by the scan policy")
    # 3. built-in exact entries
    if full in _UNKNOWN_EXACT:
        if policy is not None and _listed(full, policy.allow):
            return Judgement(Rule.ALLOW, full, "allowed by the scan policy")
        return Judgement(Rule.UNKNOWN, full, "call indirection; not on the allow-list")
    if full in _ALLOW_EXACT:
        return Judgement(Rule.ALLOW, full, "allow-list")
    if full in _INERT_EXACT:
        return Judgement(
            Rule.ALLOW, full, "inert builtin, exception, collections.abc type or __future__ feature"
        )
    if full.startswith("__torch__."):
        return Judgement(Rule.ALLOW, full, "TorchScript class")
    # 4. built-in deny rules (a forced user allow overrides them, loudly)
    reason = _deny_reason(full)
    if reason is None and "." in name:
        reason = _walk_reason(name.strip())
    if reason is not None:
        if policy is not None and _listed(full, policy.force_allow):
            return Judgement(
                Rule.ALLOW, full, f"forced by the scan policy over the deny-list ({reason})", True
            )
        return Judgement(Rule.DENY, full, reason)
    # 5. the user's allow-list
    if policy is not None and _listed(full, policy.allow):
        return Judgement(Rule.ALLOW, full, "allowed by the scan policy")
    # 6. attribute walks through modules or functions
    if _walks_through_module(name.strip()):
        return Judgement(Rule.UNKNOWN, full, "dotted name walks through a module or function attribute")
    # 7. built-in allow patterns
    if _TORCH_REBUILD.match(full) or _TORCH_STORAGE.match(full) or _TORCH_DTYPE.match(full):
        return Judgement(Rule.ALLOW, full, "torch tensor rebuild")
    if _NUMPY_SCALAR.match(full):
        return Judgement(Rule.ALLOW, full, "numpy scalar type")
    if _NUMPY_MATH.match(full):
        return Judgement(Rule.ALLOW, full, "numpy math function (e.g. a FunctionTransformer's func)")
    if full.startswith(_ALLOW_FUNCTION_PREFIXES):
        return Judgement(Rule.ALLOW, full, "scikit-learn metric or score function")
    last = full.rsplit(".", 1)[-1]
    if last.startswith("__pyx_unpickle_") and any(full.startswith(p) for p in _ALLOW_CLASS_PREFIXES):
        # Cython's generated unpickle helper of an extension class: rebuilds that class only.
        return Judgement(Rule.ALLOW, full, "Cython class reconstructor")
    if (
        any(full.startswith(p) for p in _ALLOW_CLASS_PREFIXES)
        and last.lstrip("_")[:1].isupper()
        and "._testing" not in full
        and ".tests." not in full
    ):
        return Judgement(Rule.ALLOW, full, "estimator class")
    # 8. everything else
    return Judgement(Rule.UNKNOWN, full, "not on the allow-list")


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_<>][A-Za-z0-9_<>]*)*$")


def _looks_like_name(text: str) -> bool:
    return bool(_NAME_RE.match(text.strip())) and text == text.strip()
