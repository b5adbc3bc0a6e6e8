"""TorchScript ``code/`` entries: every spelling of a dangerous call is found, clean code stays clean.

Issue 11 item 1: the scanner used to match canonical spellings by regular expression, so
``torch . from_file(``, line continuations and aliases scanned ``safe`` while ``torch.jit.load`` compiled
and ran them. Each case below plants one spelling into the ``forward`` of an otherwise clean archive
(built here, no torch needed) and asserts the verdict; the benign twin is the same archive unplanted.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest

from mlsecops.supplychain.scanner import Verdict, scan_file

_CLEAN_FORWARD = """\
    _0 = __torch__.torch.nn.functional.relu
    weight = self.weight
    y = torch.linear(x, weight, None)
    _1 = annotate(List[Tensor], [])
    _2 = torch.append(_1, y)
    return _0(torch.add(y, 1), False, )
"""


def _archive(forward: str = _CLEAN_FORWARD, *, extra: str = "", data_pkl: bytes | None = None) -> bytes:
    """A TorchScript-shaped zip whose ``__torch__.M.forward`` body is ``forward``."""
    code = (
        "class M(Module):\n"
        '  __parameters__ = ["weight", ]\n'
        "  __buffers__ = []\n"
        "  weight : Tensor\n"
        "  training : bool\n"
        "  def forward(self: __torch__.M,\n"
        "    x: Tensor) -> Tensor:\n" + forward + extra
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/data.pkl", data_pkl if data_pkl is not None else pickle.dumps({"w": 1}, 2))
        z.writestr("m/constants.pkl", pickle.dumps((), 2))
        z.writestr("m/code/__torch__.py", code)
        z.writestr("m/version", "10\n")
    return buf.getvalue()


def _scan(tmp_path: Path, data: bytes) -> tuple[Verdict, list[str]]:
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    r = scan_file(path)
    assert r.format == "torchscript"
    return r.verdict, [f"{h.severity.name} {h.title} {h.callable}" for h in r.hits]


def test_clean_archive_is_safe(tmp_path: Path) -> None:
    verdict, hits = _scan(tmp_path, _archive())
    assert verdict is Verdict.SAFE, hits


# Each body replaces forward; a file operation reached by any spelling is malicious.
MALICIOUS = {
    "canonical": '    return torch.from_file("/etc/passwd", True, 100)\n',
    "spaces around dots": '    return torch . from_file ("/etc/passwd", True, 100)\n',
    "line continuation": '    return torch \\\n      .from_file("/etc/passwd", True, 100)\n',
    "parenthesised": '    return (torch\n      .from_file)("/etc/passwd", True, 100)\n',
    "alias of the function": '    f = torch.from_file\n    return f("/etc/passwd", True, 100)\n',
    "alias of the module": '    t = torch\n    return t.from_file("/etc/passwd", True, 100)\n',
    "alias chain": '    a = ops\n    b = a.aten\n    c = b\n    return c.from_file("/x", True, 1)\n',
    "alias assigned after use": '    y = g("/x", True, 1)\n    g = torch.from_file\n    return y\n',
    "getattr on torch": '    return getattr(torch, "from_file")("/etc/passwd", True, 100)\n',
    "getattr on ops.aten": '    return getattr(ops.aten, "from_file")("/x", True, 1)\n',
    "ops.aten spelling": '    return ops.aten.from_file("/etc/passwd", True, 100)\n',
    "torch.autograd is aten": '    return torch.autograd.from_file("/etc/passwd", True, 100)\n',
    "ops.NS.autograd is aten": '    ops.prim.autograd.save(x, "/tmp/x")\n    return x\n',
    "save": '    torch.save(x, "/tmp/owned")\n    return x\n',
    "debugprims": '    return ops.debugprims.load_tensor("/x", [1], [1], dtype=6, device=None)\n',
    "nested function": '    def g():\n      return torch.from_file("/x", True, 1)\n    return fork(g)\n',
    "lambda": '    g = lambda: torch.from_file("/x", True, 1)\n    return g()\n',
    "list comprehension": '    return [torch.from_file(p, True, 1) for p in ["/x"]][0]\n',
    "walrus": '    return (f := torch.from_file)("/x", True, 1)\n',
    "inside a tuple": '    a, b = torch.from_file, 1\n    return a("/x", True, b)\n',
    "shadowed later": '    y = torch.from_file("/x", True, 1)\n    torch = y\n    return y\n',
    "conditional alias": "    if x.sum() > 0:\n      f = torch.add\n    else:\n      f = torch.from_file\n"
    "    return f(x, x)\n",
    "default argument": None,
    "decorator": None,
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_file_operations_are_malicious_in_every_spelling(tmp_path: Path, case: str) -> None:
    body = MALICIOUS[case]
    if case == "default argument":
        data = _archive(
            extra='  def g(self, p: Tensor = torch.from_file("/x", True, 1)) -> Tensor:\n    return p\n'
        )
    elif case == "decorator":
        data = _archive(extra="  @torch.from_file\n  def g(self) -> int:\n    return 1\n")
    else:
        assert body is not None
        data = _archive(body)
    verdict, hits = _scan(tmp_path, data)
    assert verdict is Verdict.MALICIOUS, hits


# Spellings that do not resolve cleanly, or need code outside the archive: suspicious at least.
SUSPICIOUS = {
    "string-built getattr": '    return getattr(torch, "from_" + "file")("/x", True, 1)\n',
    "custom operator namespace": "    return ops.myns.op(x)\n",
    "custom namespace by alias": "    n = ops.foo\n    return n.bar(x)\n",
    "custom namespace by getattr": '    return getattr(ops, "evil").run(x)\n',
    "rpc": '    return ops.prim.rpc_sync("worker", __torch__.f, (x,))\n',
    "c10d network operators": "    return ops.c10d.broadcast(x)\n",
    "registered C++ class": '    s = __torch__.torch.classes.dist_c10d.FileStore("/tmp/x", 1)\n    return x\n',
    "torch._C": "    return torch._C._jit_pass_inline(x)\n",
    "torch.ops.load_library": '    torch.ops.load_library("/tmp/evil.so")\n    return x\n',
    "unknown operator": "    return torch.not_an_operator(x)\n",
    "__import__": '    return __import__("os").system("id")\n',
    "open": '    return open("/etc/passwd").read()\n',
    "unknown global": "    return evil(x)\n",
    "call of a call result": "    return torch.add(x, x)(1)\n",
    "call of a subscript": "    return [torch.add][0](x, x)\n",
    "subscripted attribute": '    return torch.__dict__["from_file"]("/x")\n',
    "namespace in a container": "    fs = [torch]\n    return fs[0].relu(x)\n",
    "method named like a file op": '    return x.save("/tmp/x")\n',
    "dunder attribute": "    return x.__class__\n",
    "unknown method": "    return x.not_a_method_anywhere()\n",
    "import statement": "    import os\n    return x\n",
    "try statement": "    try:\n      return x\n    except Exception:\n      return x\n",
    "star arguments": "    a = [x, x]\n    return torch.add(*a)\n",
    "f-string": '    s = f"{x}"\n    return x\n',
    "raw string prefix": '    s = r"abc"\n    return x\n',
    "unicode identifier": "    return \uff54\uff4f\uff52\uff43\uff48.relu(x)\n",
    "carriage return": "    y = x # \r    return torch.from_file('/x', True, 1)\n    return y\n",
    "form feed": "    y = x\n\x0c    return y\n",
    "unparsable": "    return (x\n",
    "type position": '    y = annotate(torch.from_file("/x"), [])\n    return x\n',
    "triple-quoted string": '    s = """a" + torch.from_file("/x", True, 1) + "b"""\n    return x\n',
    "alias chain written backwards": "".join(f"    a{i} = a{i + 1}\n" for i in range(40))
    + "    a40 = torch\n    return a0.from_file('/x', True, 1)\n",
    "nested too deep to parse": "    return " + " + ".join(["x"] * 50_000) + "\n",
}


@pytest.mark.parametrize("case", sorted(SUSPICIOUS))
def test_unresolvable_code_is_not_safe(tmp_path: Path, case: str) -> None:
    verdict, hits = _scan(tmp_path, _archive(SUSPICIOUS[case]))
    assert verdict in (Verdict.SUSPICIOUS, Verdict.MALICIOUS), hits


def test_non_utf8_source_is_suspicious(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_archive())) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            dst.writestr(info, raw + b"# \xff\xfe\n" if info.filename.endswith(".py") else raw)
    verdict, hits = _scan(tmp_path, buf.getvalue())
    assert verdict is Verdict.SUSPICIOUS and any("not UTF-8" in h for h in hits), hits


@pytest.mark.parametrize("entry", ["m/data.pkl", "m/constants.pkl", "m/code/__torch__.py.debug_pkl"])
def test_pickles_of_a_torchscript_archive_are_still_scanned(tmp_path: Path, entry: str) -> None:
    payload = b"\x80\x02cos\nsystem\n\x8c\x02id\x85R."
    clean = _archive()
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(clean)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, payload if info.filename == entry else src.read(info))
        if entry not in src.namelist():
            dst.writestr(entry, payload)
    verdict, hits = _scan(tmp_path, buf.getvalue())
    assert verdict is Verdict.MALICIOUS, hits
