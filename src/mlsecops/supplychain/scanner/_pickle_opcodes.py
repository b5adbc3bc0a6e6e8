"""The pickle opcode table and how opcode handlers are registered and dispatched.

A handler is called with the walker state, the opcode byte and the opcode's offset, after the opcode
byte was read; it reads its arguments from ``st.s``, changes ``st.stack``/``st.meta``/``st.memo`` as the
CPython unpickler would (with stand-ins for values), and reports what it sees through ``st.hit`` and
``st.judge``. It raises ``Malformed`` (or the stream raises ``Truncated``) where the real loader would
fail, and returns True only at STOP.

To support an opcode: add its name and code to ``OPCODES``, write its handler in ``_pickle_ops_data``
(values, containers, memo, framing) or ``_pickle_ops_calls`` (globals, calls, persistent ids) and
register it there with ``@handles("NAME")``; ``dispatch_table`` refuses a table with an opcode handled
twice or not at all.
"""

from __future__ import annotations

from collections.abc import Callable

from mlsecops.supplychain.scanner._pickle_state import Malformed, WalkState

__all__ = ["OPCODES", "Handler", "dispatch_table", "registrar"]

Handler = Callable[[WalkState, int, int], bool | int | None]
"""``handler(state, opcode, opcode_offset)``; True ends the walk (STOP), 2 says the open frame changed."""

OPCODES: dict[str, int] = {
    # constants
    "BININT1": 0x4B,
    "BININT2": 0x4D,
    "BININT": 0x4A,
    "BINFLOAT": 0x47,
    "SHORT_BINUNICODE": 0x8C,
    "BINUNICODE": 0x58,
    "BINUNICODE8": 0x8D,
    "SHORT_BINBYTES": 0x43,
    "BINBYTES": 0x42,
    "BINBYTES8": 0x8E,
    "BYTEARRAY8": 0x96,
    "SHORT_BINSTRING": 0x55,
    "BINSTRING": 0x54,
    "LONG1": 0x8A,
    "LONG4": 0x8B,
    "NONE": 0x4E,
    "NEWTRUE": 0x88,
    "NEWFALSE": 0x89,
    "INT": 0x49,
    "LONG": 0x4C,
    "FLOAT": 0x46,
    "STRING": 0x53,
    "UNICODE": 0x56,
    # containers
    "MARK": 0x28,
    "EMPTY_TUPLE": 0x29,
    "EMPTY_LIST": 0x5D,
    "EMPTY_DICT": 0x7D,
    "EMPTY_SET": 0x8F,
    "TUPLE1": 0x85,
    "TUPLE2": 0x86,
    "TUPLE3": 0x87,
    "TUPLE": 0x74,
    "LIST": 0x6C,
    "DICT": 0x64,
    "FROZENSET": 0x91,
    "APPEND": 0x61,
    "APPENDS": 0x65,
    "ADDITEMS": 0x90,
    "SETITEM": 0x73,
    "SETITEMS": 0x75,
    "POP": 0x30,
    "POP_MARK": 0x31,
    "DUP": 0x32,
    # memo
    "BINPUT": 0x71,
    "LONG_BINPUT": 0x72,
    "PUT": 0x70,
    "MEMOIZE": 0x94,
    "BINGET": 0x68,
    "LONG_BINGET": 0x6A,
    "GET": 0x67,
    # globals and calls
    "GLOBAL": 0x63,
    "STACK_GLOBAL": 0x93,
    "INST": 0x69,
    "OBJ": 0x6F,
    "REDUCE": 0x52,
    "NEWOBJ": 0x81,
    "NEWOBJ_EX": 0x92,
    "BUILD": 0x62,
    "EXT1": 0x82,
    "EXT2": 0x83,
    "EXT4": 0x84,
    "PERSID": 0x50,
    "BINPERSID": 0x51,
    "NEXT_BUFFER": 0x97,
    "READONLY_BUFFER": 0x98,
    # framing
    "PROTO": 0x80,
    "FRAME": 0x95,
    "STOP": 0x2E,
}
"""Every opcode of pickle protocols 0-5, by its ``pickletools`` name."""


def registrar(table: dict[int, Handler]) -> Callable[..., Callable[[Handler], Handler]]:
    """A decorator factory: ``@handles("NAME", ...)`` puts the decorated handler in ``table``."""

    def handles(*names: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            for name in names:
                code = OPCODES[name]
                if code in table:
                    raise ValueError(f"opcode {name} has two handlers")
                table[code] = fn
            return fn

        return register

    return handles


def _invalid(st: WalkState, op: int, op_off: int) -> None:
    raise Malformed(f"invalid opcode 0x{op:02x} at offset {op_off}")


def dispatch_table(*tables: dict[int, Handler]) -> tuple[Handler, ...]:
    """The handler of each of the 256 byte values; a byte that is no opcode raises ``Malformed``.

    Raises:
        ValueError: an opcode has two handlers or none.
    """
    merged: dict[int, Handler] = {}
    for table in tables:
        for code, fn in table.items():
            if code in merged:
                raise ValueError(f"opcode 0x{code:02x} has two handlers")
            merged[code] = fn
    missing = sorted(name for name, code in OPCODES.items() if code not in merged)
    if missing or len(merged) != len(OPCODES):
        raise ValueError(f"opcodes without a handler: {missing}")
    return tuple(merged.get(code, _invalid) for code in range(256))
