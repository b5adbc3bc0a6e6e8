"""How big and how deep the loaded object would be, computed without building it (denial of service).

A pickle of a few hundred bytes can describe an object of 10^12 parts: a list holding a memoized list
ten times, held ten times, and so on (``BINGET``/``DUP`` push references, not copies). Loading it is
cheap, but anything that walks the result (``repr``, ``copy.deepcopy``, ``json.dumps``, a state-dict
loop) expands it. The walker keeps, for every container stand-in, the number of objects a traversal
reaches (``n``, saturated at ``SATURATE``) and the nesting depth (``d``), updated in O(items) where the
container is built, so the analysis costs what the input costs, never what it expands to. A result
that expands past ``EXPANSION_MIN`` objects and ``EXPANSION_RATIO`` objects per input byte, or nests
deeper than any pickler writes (``MAX_NESTING``), is reported with the factor as evidence.

Tuples are plain Python tuples on the walker's stack; the ones that hold containers have their size in
``WalkState.tsizes`` (bounded by ``MAX_TRACKED_TUPLES``; past it, the report has already been made or
the tuples are small).
"""

from __future__ import annotations

import sys

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._pickle_state import Call, Coll, Dct, Frozen, Lst, WalkState

__all__ = [
    "EXPANSION_MIN",
    "EXPANSION_RATIO",
    "MAX_NESTING",
    "NESTED",
    "grow",
    "made",
    "measure",
    "new_tuple",
    "sized",
]

SATURATE = 1 << 62
"""Sizes stop growing here (a self-referencing list doubles per opcode: the count must stay a small int)."""
EXPANSION_MIN = 10_000_000
"""Objects a traversal of the result must reach before expansion is reported (real models reach fewer)."""
EXPANSION_RATIO = 1_000
"""...and objects per input byte: real pickles write each object once (about 1 object per 2-20 bytes)."""
MAX_NESTING = 5_000
"""Deepest nesting reported as normal: picklers recurse per level and stop near 1,000 levels."""
MAX_TRACKED_TUPLES = 200_000
"""Tuples whose sizes are remembered (bounds memory; tuples of plain values are never stored)."""

_SIZED = frozenset({Lst, Coll, Frozen, Dct, Call})
NESTED = _SIZED | {tuple}
"""Types of stand-ins that carry a size of their own (everything else counts as one plain value)."""


def measure(st: WalkState, items: list[object] | tuple[object, ...]) -> tuple[int, int]:
    """Objects reached and depth of ``items`` taken together (each plain value counts 1, depth 0)."""
    n = len(items)
    d = 0
    if NESTED.isdisjoint(map(type, items)):
        return n, d  # plain values only (the common case), tested in C
    tsizes = st.tsizes
    for x in items:
        t = type(x)
        if t in _SIZED:
            n += x.n - 1  # type: ignore[attr-defined]
            if x.d > d:  # type: ignore[attr-defined]
                d = x.d  # type: ignore[attr-defined]
        elif t is tuple and x:
            e = tsizes.get(id(x))
            if e is not None and e[0] is x:
                n += e[1] - 1
                if e[2] > d:
                    d = e[2]
            else:
                n += len(x)  # type: ignore[arg-type]
                if d < 1:
                    d = 1
    return n, d


def sized(st: WalkState, x: object) -> tuple[int, int]:
    """Objects reached and depth of one value."""
    return measure(st, (x,))


def new_tuple(st: WalkState, items: list[object]) -> tuple[object, ...]:
    """Make the tuple stand-in of ``items``, remembering its size when it holds containers."""
    t = tuple(items)
    if NESTED.isdisjoint(map(type, t)):
        return t  # plain values (the common case): size len+1, depth 1, nothing to remember
    n, d = measure(st, t)
    n += 1
    d += 1
    if d > 1 or n > len(t) + 1:
        if len(st.tsizes) >= MAX_TRACKED_TUPLES:
            _sweep(st)
        if len(st.tsizes) < MAX_TRACKED_TUPLES:
            st.tsizes[id(t)] = (t, min(n, SATURATE), d)
    if (n > EXPANSION_MIN and "expansion" not in st.flagged) or (
        d > MAX_NESTING and "nesting" not in st.flagged
    ):
        check(st, n, d)
    return t


def made(st: WalkState, func: object, args: object, offset: int, parts: object) -> Call:
    """The ``Call`` stand-in of ``func(args)``; ``parts`` (the argument tuple or list) gives its size."""
    n, d = measure(st, parts if isinstance(parts, (tuple, list)) else (parts,))
    if d:
        d += 1
        if (n > EXPANSION_MIN and "expansion" not in st.flagged) or (
            d > MAX_NESTING and "nesting" not in st.flagged
        ):
            check(st, n, d)
    return Call(func, args, offset, n=min(n + 1, SATURATE), d=d)


def _sweep(st: WalkState) -> None:
    """Forget tuples nothing else holds (no stack slot, memo entry or live tuple can reach them again).

    Only when the live ones alone fill the table is it left full, and reported: past that, sizes of new
    tuples are not known, so an expansion could be missed.
    """
    tsizes = st.tsizes
    dead = [k for k, e in tsizes.items() if sys.getrefcount(e[0]) <= _ONLY_OURS]
    for k in dead:
        del tsizes[k]
    if len(tsizes) >= MAX_TRACKED_TUPLES:
        st.anomaly(
            "tuples",
            "too many nested tuples to follow",
            f"more than {MAX_TRACKED_TUPLES} tuples that hold containers are alive at once (memoized or on "
            "the stack); the size of the loaded object is no longer followed.",
            st.s.tell(),
        )


_ONLY_OURS = 2
"""``sys.getrefcount`` of a tuple held only by its ``tsizes`` entry (the entry and the call's argument)."""


def grow(st: WalkState, target: object, items: list[object] | tuple[object, ...]) -> int:
    """Add ``items`` to a container stand-in (APPEND(S), SETITEM(S), ADDITEMS, BUILD).

    Returns:
        The depth of the items (0 when they are all plain values: no key among them can be a container).
    """
    if type(target) not in _SIZED or not items:
        return 0
    n, d = measure(st, items)
    tn = target.n + n  # type: ignore[attr-defined]
    if tn > SATURATE:
        tn = SATURATE
    target.n = tn  # type: ignore[attr-defined]
    if d + 1 > target.d:  # type: ignore[attr-defined]
        target.d = d + 1  # type: ignore[attr-defined]
    if (tn > EXPANSION_MIN and "expansion" not in st.flagged) or (
        d >= MAX_NESTING and "nesting" not in st.flagged
    ):
        check(st, tn, d + 1)
    return d


def check(st: WalkState, n: int, d: int) -> None:
    """Report an expansion or nesting no real pickle has (once per pickle each)."""
    read = max(1, st.s.tell() - st.res.start)
    if n > EXPANSION_MIN and n > EXPANSION_RATIO * read and "expansion" not in st.flagged:
        shown = f"more than {SATURATE:.1e}" if n >= SATURATE else f"{n:.2e}"
        st.anomaly(
            "expansion",
            "pickle expands to far more objects than it holds (denial of service)",
            f"{read} bytes of pickle describe an object that a traversal expands to {shown} objects "
            f"(factor {n / read:.1e}); memo references (BINGET/DUP) are reused as in a 'billion laughs'.",
            st.s.tell(),
        )
    if d > MAX_NESTING and "nesting" not in st.flagged:
        st.anomaly(
            "nesting",
            "pickle nests deeper than picklers write (denial of service)",
            f"the loaded object nests more than {MAX_NESTING} levels deep ({d} so far); picklers recurse "
            "per level and stop near 1,000, while code that walks the result overflows the stack.",
            st.s.tell(),
            Severity.MEDIUM,
        )
