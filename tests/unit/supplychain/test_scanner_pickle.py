"""The symbolic pickle walker: every way of naming and calling a callable is resolved and judged."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mlsecops.core.findings import Severity
from mlsecops.supplychain.scanner import ArtifactScan, ScanLimits, Verdict

Scan = Callable[..., ArtifactScan]


def _callables(r: ArtifactScan) -> set[str]:
    return {h.callable for h in r.hits if h.callable}


def test_detects_reduce_of_os_system(pk: Any, scan: Scan) -> None:
    r = scan(pk.SYSTEM)
    assert r.verdict is Verdict.MALICIOUS
    assert "os.system" in _callables(r)
    hit = next(h for h in r.hits if h.callable == "os.system")
    assert hit.offset == 2 and hit.atlas == "AML.T0010" and "safetensors" in hit.remediation


def test_plain_dict_is_safe(pk: Any, scan: Scan) -> None:
    r = scan(pk.BENIGN)
    assert r.verdict is Verdict.SAFE and r.hits == [] and r.format == "pickle"


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_protocol_resolves_the_global(scan: Scan, protocol: int) -> None:
    # pickle.dumps of a *reference* to a function writes only GLOBAL/STACK_GLOBAL (nothing runs here).
    import os

    data = pickle.dumps(os.system, protocol=protocol)
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS, protocol
    assert "os.system" in _callables(r)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_benign_containers_every_protocol(scan: Scan, protocol: int) -> None:
    obj = {"a": [1, 2.5, "x", None, True], "b": (1, 2), "c": {1, 2}, "d": b"\x00" * 100, "e": bytearray(3)}
    assert scan(pickle.dumps(obj, protocol=protocol)).verdict is Verdict.SAFE


def test_stack_global_names_from_memo_resolve(pk: Any, scan: Scan) -> None:
    # 'os' and 'system' are memoised early, a decoy pair is pushed and popped, then the memo is read back.
    data = pk.asm(
        ("proto", 4),
        ("U", "os"),
        "MEMOIZE",
        ("U", "system"),
        "MEMOIZE",
        "POP",
        "POP",
        ("U", "collections"),
        ("U", "OrderedDict"),
        "POP",
        "POP",
        ("g", 0),
        ("g", 1),
        "STACK_GLOBAL",
        ("U", "id"),
        "TUPLE1",
        "REDUCE",
        "STOP",
    )
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS and "os.system" in _callables(r)


def test_memo_overwritten_with_put_resolves_to_last_value(pk: Any, scan: Scan) -> None:
    data = pk.asm(
        ("proto", 2),
        ("U", "collections"),
        ("P", 1),
        "POP",
        ("U", "posix"),
        ("P", 1),
        "POP",
        ("g", 1),
        ("U", "system"),
        "STACK_GLOBAL",
        ("U", "id"),
        "TUPLE1",
        "REDUCE",
        "STOP",
    )
    r = scan(data)
    assert "os.system" in _callables(r)  # posix.system normalised


def test_inst_obj_newobj_newobj_ex(pk: Any, scan: Scan) -> None:
    inst = pk.asm("MARK", ("S", "id"), ("I", "subprocess", "Popen"), "STOP")
    obj = pk.asm("MARK", ("G", "pty", "spawn"), ("S", "id"), "OBJ", "STOP")
    newobj = pk.asm(("proto", 2), ("G", "subprocess", "Popen"), ("U", "id"), "TUPLE1", "NEWOBJ", "STOP")
    newobj_ex = pk.asm(
        ("proto", 4), ("G", "subprocess", "Popen"), ("U", "id"), "TUPLE1", "EMPTY_DICT", "NEWOBJ_EX", "STOP"
    )
    for data, name in [
        (inst, "subprocess.Popen"),
        (obj, "pty.spawn"),
        (newobj, "subprocess.Popen"),
        (newobj_ex, "subprocess.Popen"),
    ]:
        r = scan(data)
        assert r.verdict is Verdict.MALICIOUS and name in _callables(r), name


def test_build_that_plants_setstate(pk: Any, scan: Scan) -> None:
    # BUILD (None, {'__setstate__': <callable>}) then BUILD 'cmd' calls the planted callable.
    data = pk.asm(
        ("proto", 2),
        ("G", "collections", "OrderedDict"),
        "EMPTY_TUPLE",
        "REDUCE",
        "NONE",
        "EMPTY_DICT",
        ("U", "__setstate__"),
        ("G", "builtins", "print"),
        "SETITEM",
        "TUPLE2",
        "BUILD",
        ("U", "hello"),
        "BUILD",
        "STOP",
    )
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS
    assert any(h.title.startswith("BUILD plants __setstate__") for h in r.hits)


def test_getattr_chain_and_indirect_call(pk: Any, scan: Scan) -> None:
    # getattr(__import__('os'), 'system')('id')
    data = pk.asm(
        ("proto", 2),
        ("G", "builtins", "getattr"),
        ("G", "builtins", "__import__"),
        ("U", "os"),
        "TUPLE1",
        "REDUCE",
        ("U", "system"),
        "TUPLE2",
        "REDUCE",
        ("U", "id"),
        "TUPLE1",
        "REDUCE",
        "STOP",
    )
    r = scan(data)
    assert {"builtins.getattr", "builtins.__import__"} <= _callables(r)
    assert any("computed callable" in h.title for h in r.hits)


def test_global_name_built_at_load_time(pk: Any, scan: Scan) -> None:
    # STACK_GLOBAL whose module is the result of a call: cannot be resolved, reported as critical.
    data = pk.asm(
        ("proto", 4),
        ("G", "builtins", "str"),
        ("U", "os"),
        "TUPLE1",
        "REDUCE",
        ("U", "system"),
        "STACK_GLOBAL",
        "STOP",
    )
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS
    assert any(h.title == "global name built at load time" for h in r.hits)


def test_extension_code_is_reported(pk: Any, scan: Scan) -> None:
    r = scan(pk.asm(("proto", 2), b"\x82\x05", ("U", "id"), "TUPLE1", "REDUCE", "STOP"))
    assert r.verdict is Verdict.SUSPICIOUS
    assert any("extension" in h.title for h in r.hits)


def test_unknown_global_is_suspicious(pk: Any, scan: Scan) -> None:
    r = scan(pk.asm(("proto", 2), ("G", "__main__", "Net"), "EMPTY_TUPLE", "REDUCE", "STOP"))
    assert r.verdict is Verdict.SUSPICIOUS
    assert [h.severity for h in r.hits] == [Severity.MEDIUM]


def test_nested_pickle_in_bytes_argument(pk: Any, scan: Scan) -> None:
    inner = pk.SYSTEM
    data = pk.asm(
        ("proto", 3),
        ("G", "collections", "OrderedDict"),
        ("B", inner + b"\x00" * 80),
        "TUPLE1",
        "REDUCE",
        "STOP",
    )
    r = scan(data)
    assert r.verdict is Verdict.MALICIOUS
    hit = next(h for h in r.hits if h.callable == "os.system")
    assert "@" in hit.entry  # named by the offset of the bytes argument


def test_second_pickle_in_the_same_file(pk: Any, scan: Scan) -> None:
    r = scan(pk.BENIGN + pk.SYSTEM)
    assert r.verdict is Verdict.MALICIOUS


def test_pickle_after_leading_junk(pk: Any, scan: Scan) -> None:
    r = scan(b"\x00\x01junk-header\xff" * 50 + pk.SYSTEM)
    assert r.verdict is Verdict.MALICIOUS


def test_protocol0_pickle_inside_text(scan: Scan) -> None:
    r = scan(b"some notes\n" + b"cos\nsystem\n(S'id'\ntR." + b"\nmore notes\n")
    assert r.verdict is Verdict.MALICIOUS


def test_truncated_pickle_is_an_error_not_safe(pk: Any, scan: Scan) -> None:
    r = scan(pk.BENIGN[:-3])
    assert r.verdict is Verdict.ERROR
    assert any(h.error for h in r.hits)


def test_payload_before_truncation_still_reported(pk: Any, scan: Scan) -> None:
    r = scan(pk.SYSTEM[:-1])  # no STOP: the loader still ran REDUCE before failing
    assert r.verdict is Verdict.MALICIOUS


def test_invalid_opcode_after_payload(pk: Any, scan: Scan) -> None:
    r = scan(pk.SYSTEM[:-1] + b"\xff\xfe")
    assert r.verdict is Verdict.MALICIOUS


def test_large_binbytes_are_skipped_not_read(pk: Any, scan: Scan) -> None:
    big = np.zeros(8 << 20, dtype=np.uint8).tobytes()
    data = pk.asm(("proto", 4), b"\x8e" + struct.pack("<Q", len(big)) + big, "STOP")
    r = scan(data, limits=ScanLimits(max_read_bytes=1 << 20))
    assert r.verdict is Verdict.SAFE


def test_opcode_limit_yields_a_finding(pk: Any, scan: Scan) -> None:
    data = pk.asm(("proto", 2), "EMPTY_LIST", "MARK", *([("K", 1)] * 200_000), "APPENDS", "STOP")
    r = scan(data, limits=ScanLimits(max_opcodes=100_000))
    assert r.verdict is Verdict.ERROR
    assert any(h.kind == "limit" for h in r.hits)


def test_joblib_object_array_is_walked(tmp_path: object, scan: Scan) -> None:
    import io

    import joblib

    buf = io.BytesIO()
    joblib.dump({"x": np.array([1, "a", None], dtype=object), "y": np.arange(1000.0)}, buf)
    assert scan(buf.getvalue()).verdict is Verdict.SAFE


def test_word_lists_are_not_mistaken_for_pickles(scan: Scan) -> None:
    vocab = b"[PAD]\nmacos\nsystem\nios\nsystem\ntest\ncos\nsystem\nthe\n" * 50
    assert scan(vocab, name="vocab.txt").verdict is Verdict.SAFE


# -- policy precedence: one test per rule of the _policy module docstring --------------------------


def _pol(**lists: list[str]) -> Any:
    from mlsecops.supplychain.scanner import ScanPolicy

    return ScanPolicy.from_mapping(lists)


def test_precedence_1_malformed_names_deny_whatever_the_policy_says() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    p = _pol(allow=["os.*"], force_allow=["os.system"])
    assert judge("os", "system\x00", p).rule is Rule.DENY
    assert judge("os ", "system", p).reason == "malformed global name"


def test_precedence_2_user_deny_beats_the_built_in_allow_list() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    assert judge("numpy", "ndarray").rule is Rule.ALLOW
    p = _pol(deny=["numpy.*"], allow=["numpy.ndarray"])
    assert judge("numpy", "ndarray", p).rule is Rule.DENY
    assert judge("numpy.core.multiarray", "_reconstruct", p).reason == "denied by the scan policy"


def test_precedence_3_built_in_exact_entries_beat_built_in_deny_rules() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    assert judge("uuid", "uuid4").rule is Rule.DENY  # the uuid module is denied (it runs processes)
    assert judge("uuid", "UUID").rule is Rule.ALLOW  # ...but the exact entry wins
    assert judge("functools", "partial").rule is Rule.UNKNOWN  # functools is denied; partial is reviewed
    assert judge("functools", "partial", _pol(allow=["functools.partial"])).rule is Rule.ALLOW
    assert judge("functools", "reduce", _pol(allow=["functools.*"])).rule is Rule.DENY
    assert judge("__future__", "annotations").rule is Rule.ALLOW  # private-module rule, exact inert name
    assert judge("__future__", "os").rule is Rule.DENY


def test_precedence_4_built_in_deny_needs_force_to_be_overridden() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    assert judge("os", "system", _pol(allow=["os.system", "os.*"])).rule is Rule.DENY
    forced = judge("os", "system", _pol(force_allow=["os.system"]))
    assert forced.rule is Rule.ALLOW and forced.forced and "process" in forced.reason
    # force_allow of an exact name does not open its module
    assert judge("os", "popen", _pol(force_allow=["os.system"])).rule is Rule.DENY


def test_precedence_5_user_allow_beats_unknown() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    assert judge("mypkg.models", "MyNet").rule is Rule.UNKNOWN
    p = _pol(allow=["mypkg.*"])
    assert judge("mypkg.models", "MyNet", p).rule is Rule.ALLOW
    assert judge("mypkgx.models", "MyNet", p).rule is Rule.UNKNOWN  # a prefix entry matches whole parts


def test_precedence_6_attribute_walks_are_unknown_unless_user_allowed() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    assert judge("sklearn.base", "clone.helper").rule is Rule.UNKNOWN
    assert judge("sklearn.base", "clone.helper", _pol(allow=["sklearn.base.clone.helper"])).rule is Rule.ALLOW


def test_precedence_7_built_in_patterns_allow() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    assert judge("torch._utils", "_rebuild_tensor_v2").rule is Rule.ALLOW
    assert judge("sklearn.linear_model._logistic", "LogisticRegression").rule is Rule.ALLOW
    # a pattern never beats a deny rule: a load-like function in an allowed prefix
    assert judge("sklearn.linear_model", "load_model").rule is Rule.DENY


def test_precedence_8_everything_else_is_unknown() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    assert judge("somepkg", "Thing").rule is Rule.UNKNOWN


def test_python2_renames_are_judged_as_the_unpickler_reads_them() -> None:
    from mlsecops.supplychain.scanner import Rule, judge

    assert judge("__builtin__", "reduce").name == "functools.reduce"
    assert judge("__builtin__", "reduce").rule is Rule.DENY
    assert judge("__builtin__", "xrange").rule is Rule.ALLOW
    assert judge("dbm", "whichdb").rule is Rule.DENY  # both names exist: the worse judgement wins
