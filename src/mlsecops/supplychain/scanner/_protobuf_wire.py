"""A bounded protobuf wire-format reader over a ``Stream`` (no descriptors, no generated code).

The TensorFlow scanners need a handful of fields of a few messages (SavedModel, GraphDef, NodeDef,
FunctionDef, SavedMetadata); everything else is skipped with a seek (or a bounded discard on a forward
stream), so tensor constants inside a graph are never read into memory. Every length is checked against
the enclosing message, nesting is capped, and malformed input raises ``WireError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlsecops.supplychain.scanner._io import Stream, Truncated

__all__ = [
    "MAX_TEXT",
    "WireError",
    "fields",
    "read_text",
    "varint",
]

MAX_TEXT = 1 << 20
"""Longest string field decoded into memory (op names, attribute strings, metadata JSON pieces)."""

VARINT_BITS = 70
"""A varint longer than ten bytes is malformed (protobuf's own parser rejects it)."""


class WireError(Exception):
    """The bytes are not a well-formed protobuf message."""


def varint(s: Stream) -> int:
    """Read one base-128 varint.

    Raises:
        Truncated: the stream ended inside it.
        WireError: it is longer than ten bytes.
    """
    shift = 0
    out = 0
    while True:
        b = s.read(1)
        if not b:
            raise Truncated("varint cut short")
        out |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return out
        shift += 7
        if shift >= VARINT_BITS:
            raise WireError("varint too long")


def fields(s: Stream, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (field number, wire type, value or length) until ``end``.

    Varints are decoded, fixed-width fields skipped; the payload of a length-delimited field (wire type
    2) is left at the stream position for the caller to read, descend into or ``skip``. Groups (wire
    types 3 and 4) are skipped whole, as a parser skips unknown fields; a stray end-group is malformed.

    Raises:
        WireError: a field number 0, an unknown wire type, or a length running past ``end``.
        Truncated: the stream ended early.
    """
    while s.tell() < end:
        key = varint(s)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise WireError("field number 0")
        if wt == 0:
            yield num, wt, varint(s)
        elif wt == 1:
            s.skip(8)
            yield num, wt, 0
        elif wt == 5:
            s.skip(4)
            yield num, wt, 0
        elif wt == 2:
            n = varint(s)
            if s.tell() + n > end:
                raise WireError(f"field {num} runs past its message ({n} bytes)")
            yield num, wt, n
        elif wt == 3:
            _skip_group(s, num, end)  # an unknown group: protobuf parsers keep it, so skip it as they do
        else:
            raise WireError(f"unsupported wire type {wt} (field {num})")
    if s.tell() != end:
        raise WireError("a field runs past its message")


MAX_GROUP_DEPTH = 32
"""Nested groups skipped; deeper is malformed (protobuf's own recursion limit is 100)."""


def _skip_group(s: Stream, num: int, end: int) -> None:
    """Skip a group opened by field ``num`` up to its matching end-group tag."""
    open_groups = [num]
    while open_groups:
        if s.tell() >= end:
            raise WireError(f"group {num} is not closed")
        key = varint(s)
        n, wt = key >> 3, key & 7
        if wt == 0:
            varint(s)
        elif wt == 1:
            s.skip(8)
        elif wt == 5:
            s.skip(4)
        elif wt == 2:
            length = varint(s)
            if s.tell() + length > end:
                raise WireError(f"field {n} runs past its message ({length} bytes)")
            s.skip(length)
        elif wt == 3:
            open_groups.append(n)
            if len(open_groups) > MAX_GROUP_DEPTH:
                raise WireError("groups nested too deep")
        elif wt == 4:
            if n != open_groups.pop():
                raise WireError(f"end of group {n} does not match its start")
        else:
            raise WireError(f"unsupported wire type {wt} (field {n})")


def read_text(s: Stream, n: int, limit: int = MAX_TEXT) -> str | None:
    """Read a length-delimited string of ``n`` bytes; ``None`` (and skipped) when longer than ``limit``."""
    if n > limit:
        s.skip(n)
        return None
    return s.read_exact(n).decode("utf-8", "replace")
