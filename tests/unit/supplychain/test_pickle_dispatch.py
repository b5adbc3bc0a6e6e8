"""The pickle walker's dispatch table: one handler per opcode, no byte left without a decision."""

from __future__ import annotations

import collections
import pickle
import pickletools
import random

import pytest

from mlsecops.supplychain.scanner._io import Stream
from mlsecops.supplychain.scanner._pickle import PickleResult, PickleWalker
from mlsecops.supplychain.scanner._pickle_args import BytesReader
from mlsecops.supplychain.scanner._pickle_opcodes import OPCODES, Handler, dispatch_table, registrar
from mlsecops.supplychain.scanner._pickle_ops_calls import CALL_OPS
from mlsecops.supplychain.scanner._pickle_ops_data import DATA_OPS
from mlsecops.supplychain.scanner._pickle_state import WalkState
from mlsecops.supplychain.scanner._types import Budget, Hit, ScanLimits

_NOT_OPCODES = sorted(set(range(256)) - set(OPCODES.values()))


def _walk(data: bytes) -> tuple[PickleResult, list[Hit]]:
    budget = Budget(ScanLimits())
    hits: list[Hit] = []
    stream = Stream(BytesReader(data), budget, size=len(data))
    return PickleWalker(stream, budget.limits, entry="t", report=hits.append).walk(budget), hits


def test_opcode_table_is_every_stdlib_opcode() -> None:
    assert {op.name: op.code.encode("latin-1")[0] for op in pickletools.opcodes} == OPCODES


def test_dispatch_table_refuses_a_missing_or_doubled_handler() -> None:
    with pytest.raises(ValueError, match=r"without a handler: .*GLOBAL"):
        dispatch_table(DATA_OPS)
    with pytest.raises(ValueError, match="two handlers"):
        dispatch_table(DATA_OPS, CALL_OPS, {OPCODES["REDUCE"]: DATA_OPS[OPCODES["NONE"]]})
    table: dict[int, Handler] = {}
    handles = registrar(table)

    def noop(st: WalkState, op: int, op_off: int) -> None:
        return None

    handles("NONE")(noop)
    with pytest.raises(ValueError, match="NONE has two handlers"):
        handles("NONE")(noop)
    assert len(dispatch_table(DATA_OPS, CALL_OPS)) == 256


@pytest.mark.parametrize("byte", _NOT_OPCODES)
def test_a_byte_that_is_no_opcode_is_refused(byte: int) -> None:
    res, hits = _walk(b"\x80\x02" + bytes([byte]) + b".")
    assert not res.ok and res.error == f"invalid opcode 0x{byte:02x} at offset 2" and hits == []


@pytest.mark.parametrize("name", sorted(OPCODES))
def test_every_opcode_has_its_own_handler(name: str) -> None:
    # Benign twin of the test above: no opcode falls through to the refusal (a truncated argument or a
    # stack underflow is a different error).
    res, _ = _walk(b"\x80\x02" + bytes([OPCODES[name]]))
    assert "invalid opcode" not in res.error


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_what_the_stdlib_writes_walks_to_stop(protocol: int) -> None:
    shared = [1, 2]
    obj = {
        "ints": [0, 1, 255, 256, 65536, -1, 2**70, 2**200],
        "floats": [2.5, float("inf")],
        "text": ["x", "é" * 10, "y" * 1000],
        "bytes": [b"\x00" * 10, b"z" * 300, bytearray(3)],
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
        "sets": [{1, 2}, frozenset({3}), set()],
        "flags": [None, True, False],
        "ordered": collections.OrderedDict(a=1),
        "memo": [shared, shared],
    }
    data = pickle.dumps(obj, protocol=protocol)
    res, hits = _walk(data)
    assert res.ok and res.end == len(data) and res.protocol == (protocol if protocol >= 2 else 0), res.error
    assert [h.title for h in hits] == []
    assert res.opcodes == sum(1 for _ in pickletools.genops(data))


def test_mutated_pickles_end_in_a_result_not_an_exception() -> None:
    # Seeded byte flips, insertions and deletions: every handler must turn bad input into ``Malformed``
    # or ``Truncated`` (an error result), never an IndexError or struct.error out of the walker.
    rng = random.Random(7)
    obj = {"a": [1, 2.5, "x" * 600, None, (1, 2)], "b": collections.OrderedDict(k=b"z" * 300), "c": {1}}
    bases = [pickle.dumps(obj, protocol=p) for p in range(pickle.HIGHEST_PROTOCOL + 1)]
    outcomes = {"ok": 0, "error": 0}
    for i in range(2000):
        data = bytearray(bases[i % len(bases)])
        for _ in range(rng.randint(1, 3)):
            j = rng.randrange(len(data))
            kind = rng.randint(0, 2)
            if kind == 0:
                data[j] = rng.randrange(256)
            elif kind == 1:
                data[j:j] = bytes([rng.randrange(256)])
            else:
                del data[j]
        res, _ = _walk(bytes(data))
        assert res.ok or res.error, bytes(data)
        outcomes["ok" if res.ok else "error"] += 1
    assert outcomes["ok"] > 100 and outcomes["error"] > 100, outcomes
