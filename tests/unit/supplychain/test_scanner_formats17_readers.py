"""The bounded readers behind the issue-17 format scanners: protobuf wire, TFLite flatbuffer, template
folding, Python resolution. Hostile structure must end in a finding, never an exception, a hang or a
read of the payloads the formats let us skip.
"""

from __future__ import annotations

import os
import random
import struct
import tempfile
from pathlib import Path

import pytest
from tests import _formats17 as F

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner import ScanLimits, Verdict, scan_file
from mlsecops.supplychain.scanner._io import FileRegion, Stream, Truncated
from mlsecops.supplychain.scanner._protobuf_wire import WireError, fields, varint
from mlsecops.supplychain.scanner._pysource import analyze_python
from mlsecops.supplychain.scanner._templates import MAX_TEMPLATE, analyze_template
from mlsecops.supplychain.scanner._types import Budget


def _stream(data: bytes) -> tuple[Stream, int]:
    fd, name = tempfile.mkstemp()
    os.write(fd, data)
    os.unlink(name)
    return Stream(FileRegion(fd, 0, len(data)), Budget(ScanLimits())), fd


def _walk(data: bytes) -> list[tuple[int, int, int]]:
    s, fd = _stream(data)
    try:
        out = []
        for num, wt, v in fields(s, len(data)):
            out.append((num, wt, v))
            if wt == 2:
                s.skip(v)
        return out
    finally:
        os.close(fd)


def test_wire_reader_rejects_malformed_messages() -> None:
    assert _walk(F.field(1, 5) + F.field(2, b"ab")) == [(1, 0, 5), (2, 2, 2)]
    with pytest.raises(WireError):
        _walk(b"\x0a\x10ab")  # length past the message
    with pytest.raises(WireError):
        _walk(b"\x00\x01")  # field number 0
    with pytest.raises(WireError):
        _walk(b"\x08" + b"\xff" * 11)  # an eleven-byte varint
    with pytest.raises(WireError):
        _walk(b"\x0c")  # end-group without a start
    with pytest.raises(WireError):
        _walk((F.varint(5 << 3 | 3)) * 40)  # groups nested past the cap
    s, fd = _stream(b"\x80")
    with pytest.raises(Truncated):
        varint(s)
    os.close(fd)
    group = F.varint(9 << 3 | 3) + F.field(1, b"x" * 4) + F.varint(9 << 3 | 4)
    assert _walk(group + F.field(3, 1)) == [(3, 0, 1)]  # a whole group is skipped, as parsers do


def test_savedmodel_constants_are_skipped_not_read(tmp_path: Path) -> None:
    # An 8 MiB tensor attribute inside a node must not be read: the scan fits a 1 MiB read budget.
    big = F.field(1, "value") + F.field(2, F.field(8, F.field(4, b"\0" * (8 << 20))))
    node = F.field(1, "c") + F.field(2, "Const") + F.field(5, big)
    data = F.field(1, 1) + F.field(2, F.field(2, F.field(1, node) + F.field(1, F.node_def("w", "WriteFile"))))
    (tmp_path / "saved_model.pb").write_bytes(data)
    r = scan_file(tmp_path / "saved_model.pb", limits=ScanLimits(max_read_bytes=1 << 20))
    assert r.verdict is Verdict.MALICIOUS, r.hits
    assert not any(h.kind == "limit" for h in r.hits)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:6],  # cut inside the header
        lambda b: b[:4] + b"XXXX" + b[8:],  # not TFL3: not detected as TFLite at all
        lambda b: struct.pack("<I", 1 << 30) + b[4:],  # root offset outside the file
        lambda b: b[:28] + struct.pack("<I", 1 << 31) + b[32:],  # vector length past the file
    ],
    ids=["truncated", "identifier", "root-offset", "vector-length"],
)
def test_tflite_reader_fails_closed(tmp_path: Path, mutate: object) -> None:
    data = mutate(F.tflite([(F.BUILTIN_CUSTOM, "FlexWriteFile")]))  # type: ignore[operator]
    (tmp_path / "m.tflite").write_bytes(data)
    r = scan_file(tmp_path / "m.tflite")
    assert not any(h.title == "scanner error" for h in r.hits), r.hits
    if r.format == "tflite":
        assert r.verdict is not Verdict.SAFE


def test_tflite_without_operator_codes_is_safe(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(F.tflite([]))
    assert scan_file(tmp_path / "m.tflite").verdict is Verdict.SAFE


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("{{ x|attr('%s%s' % ('__cla', 'ss__')) }}", "__class__"),
        ("{{ x|attr('{}{}'.format('__cla', 'ss__')) }}", "__class__"),
        ("{{ x|attr(''.join(['__glo', 'bals__'])) }}", "__globals__"),
        ("{{ x|attr(('__in', 'it__')|join) }}", "__init__"),
        ("{% set a = '__' %}{% set b = a ~ 'mro' ~ a %}{{ x[b] }}", "__mro__"),
        (
            "{% for p in ['__sub'] %}{% set q = p ~ 'classes__' %}{{ x|attr(q) }}{% endfor %}",
            "__subclasses__",
        ),
        ("{{ x|attr(true and '__class__' or 'y') }}", None),  # not folded: reported as computed
        ("{{ x.__dict__ }}", "__dict__"),
        ("{{ x['_TemplateReference__context'] }}", "_TemplateReference__context"),
        ("{{ messages|map('attr', '__cl' ~ 'ass__')|list }}", "__class__"),
        ("{% with k = '__gl' ~ 'obals__' %}{{ lipsum|attr(k) }}{% endwith %}", "__globals__"),
    ],
)
def test_template_folding(template: str, name: str | None) -> None:
    issues = analyze_template(template)
    assert issues and issues[0].severity >= Severity.HIGH, issues
    if name is not None:
        assert any(i.name == name for i in issues), issues


def test_template_limits_and_parse_failures() -> None:
    assert analyze_template("x" * (MAX_TEMPLATE + 1))[0].severity == Severity.MEDIUM
    deep = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    assert all(i.severity <= Severity.MEDIUM for i in analyze_template(deep))
    broken = analyze_template("{% for x in %}{{ ''.__class__ }}")  # another engine might still render it
    assert max(i.severity for i in broken) == Severity.HIGH
    assert [i.severity for i in analyze_template("{% for x in %}hello")] == [Severity.LOW]
    assert analyze_template("{{ range(10**9) }}")  # a render that never ends
    assert analyze_template("{% include 'x.j2' %}")[0].severity == Severity.MEDIUM


def test_python_resolution() -> None:
    def names(src: str) -> dict[str, Severity]:
        got = analyze_python(src)
        assert not isinstance(got, str), got
        return {i.name: i.severity for i in got}

    assert names("import subprocess\nx = subprocess.PIPE\nimport pickle\np = pickle.HIGHEST_PROTOCOL") == {}
    assert names("import yaml\nyaml.load(s, Loader=yaml.SafeLoader)") == {}
    assert names("import numpy as np\nnp.load('a.npy')") == {}
    assert names("import numpy as np\nnp.load('a.npy', allow_pickle=True)")
    assert names("def f():\n    open('x', 'w')") == {"open(write)": Severity.LOW}
    assert names("open('x', 'w')") == {"open(write)": Severity.MEDIUM}  # runs on import
    assert names("import os as o\ns = o.system\ns('id')")["os.system"] == Severity.CRITICAL
    assert names("from os import *\nsystem('id')")["os.system"] == Severity.CRITICAL
    assert names("x = __builtins__['ev' + 'al']")["builtins.eval"] == Severity.CRITICAL
    assert names("import builtins\nbuiltins.__dict__['exec']('1')")["builtins.exec"] == Severity.CRITICAL
    assert names("import os\nos.__dict__['system']('id')")["os.system"] == Severity.CRITICAL
    assert isinstance(analyze_python("def (:"), str)


@pytest.mark.timeout(120)
def test_mutated_samples_never_crash_the_scanner(tmp_path: Path) -> None:
    rng = random.Random(17)
    seeds = [
        F.saved_model(["WriteFile"], keras_metadata=[F.KERAS2_LAMBDA], assets=["a.txt"]),
        F.keras_metadata_pb([F.KERAS2_DENSE, F.KERAS2_LAMBDA]),
        F.frozen_graph(["Placeholder", "WriteFile"]),
        F.tflite([(3, ""), (F.BUILTIN_CUSTOM, "FlexWriteFile"), (F.BUILTIN_CUSTOM, "X")]),
        F.gguf({"tokenizer.chat_template": F.MISTRAL_TEMPLATE}),
        F.tokenizer_config(F.MISTRAL_TEMPLATE),
    ]
    for i, seed in enumerate(seeds):
        for j in range(40):
            b = bytearray(seed)
            for _ in range(rng.randint(1, 6)):
                p = rng.randrange(len(b))
                if rng.random() < 0.7:
                    b[p] = rng.randrange(256)
                else:
                    del b[p : p + rng.randint(1, 12)]
            path = tmp_path / f"{i}-{j}.bin"
            path.write_bytes(bytes(b))
            r = scan_file(path, sha256=False)
            assert not any(h.title == "scanner error" for h in r.hits), (i, j, r.hits)
            assert r.seconds < 5
