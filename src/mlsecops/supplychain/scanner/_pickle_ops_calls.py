"""Handlers of the opcodes that name globals, call them, and hand out persistent ids.

Every global is judged where it is referenced (``WalkState.judge`` over ``_policy.judge``), every call
whose callable is not a plain global is reported, and a ``BUILD`` whose state plants ``__setstate__`` or
``__reduce__`` is reported, so wrapping a dangerous callable in a chain cannot hide it. Extension-registry
codes cannot be resolved statically and are reported. The bytes handed to an allow-listed loader
(``torch.storage._load_from_bytes``) are scanned as the artifact it would load.
"""

from __future__ import annotations

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._pickle_args import built_class, load_bytes, name_line, skip_joblib_array
from mlsecops.supplychain.scanner._pickle_opcodes import Handler, registrar
from mlsecops.supplychain.scanner._pickle_ops_data import MAX_TUPLE
from mlsecops.supplychain.scanner._pickle_sizes import grow, made
from mlsecops.supplychain.scanner._pickle_state import (
    LOST,
    NO_FRAME,
    OPAQUE,
    Call,
    Dct,
    Glob,
    Malformed,
    WalkState,
    describe,
)

__all__ = ["CALL_OPS"]

CALL_OPS: dict[int, Handler] = {}
"""Opcode -> handler, for the opcodes of this module."""
handles = registrar(CALL_OPS)

_PERSID_LINE_MAX = 1 << 16
"""Longest protocol-0 PERSID line read."""
# Callables whose result is an array wrapper: joblib writes the array bytes right after its BUILD.
_ARRAY_WRAPPERS = {"joblib.numpy_pickle.NumpyArrayWrapper"}
# Allow-listed callables that hand a bytes argument to a full loader: torch.storage._load_from_bytes is
# torch.load(io.BytesIO(b), weights_only=False), which runs any pickle (zip, legacy or bare).
_BYTES_LOADERS = {"torch.storage._load_from_bytes"}
# Allow-listed builtins whose work grows with an int or range argument (bytearray(10**12),
# max(range(10**15))); a model file passes them data, never a huge count.
_ALLOCATORS = frozenset(
    f"builtins.{n}"
    for n in (
        "bytearray", "bytes", "list", "tuple", "set", "frozenset", "sorted", "sum", "max", "min", "all",
        "any", "dict", "str", "enumerate",
    )
)  # fmt: skip
MAX_ALLOCATION = 1 << 30
"""Items or bytes an allow-listed builtin may be asked to produce or walk before it is reported."""
# State keys that make a later BUILD or call run a callable the state chose.
_DUNDER_STATE = {
    "__setstate__",
    "__reduce__",
    "__reduce_ex__",
    "__getattr__",
    "__getattribute__",
    "__class__",
}


def _check_callable(st: WalkState, func: object, op_off: int, opname: str) -> None:
    """Report a call whose callable is not a plain global (a call through a chain)."""
    if isinstance(func, Glob):
        return
    if func is OPAQUE and opname.startswith("NEWOBJ"):
        return  # a class object we did not keep (e.g. obtained from the memo after the cap)
    st.hit(
        Severity.HIGH if func is not LOST else Severity.MEDIUM,
        f"{opname} calls a computed callable",
        f"The callable of this {opname} is not a global but {describe(func)}: a call through a "
        "chain (getattr, attrgetter, partial, a method of a returned object) that model files do "
        "not need.",
        op_off,
        describe(func),
    )


def _check_alloc(st: WalkState, func: Glob, args: object, op_off: int) -> None:
    """Report an allow-listed builtin asked to allocate or iterate more than any model needs."""
    if not isinstance(args, tuple):
        return
    for a in args[:2]:
        size = a if isinstance(a, int) else _range_len(a)
        if size is not None and size > MAX_ALLOCATION:
            st.hit(
                Severity.MEDIUM,
                f"{func.full} asked for {size:.2e} items (denial of service)",
                f"The pickle calls {func.full} on {size} items or bytes; loading allocates or loops that much "
                "before anything can stop it.",
                op_off,
                func.full,
            )
            return


def _range_len(v: object) -> int | None:
    """The length of a symbolic ``builtins.range(...)`` call of ints."""
    if not (isinstance(v, Call) and isinstance(v.func, Glob) and v.func.full == "builtins.range"):
        return None
    a = v.args
    if not isinstance(a, tuple) or not a or not all(type(x) is int for x in a):
        return None
    start, stop, step = (0, a[0], 1) if len(a) == 1 else (a[0], a[1], a[2] if len(a) > 2 else 1)
    if not isinstance(start, int) or not isinstance(stop, int) or not isinstance(step, int) or step == 0:
        return None
    return max(0, (stop - start + step - (1 if step > 0 else -1)) // step)


def _check_build(st: WalkState, inst: object, state: object, op_off: int) -> None:
    """Report BUILD state that plants a dunder (``__setstate__``, ``__reduce__``...) on an object."""
    if isinstance(inst, Glob):
        # Picklers BUILD only the instances they just created; BUILD on a class, function or module
        # sets attributes on it (the slot-state half of BUILD is setattr), changing code others call.
        st.hit(
            Severity.HIGH,
            f"BUILD sets attributes of {inst.full}",
            f"BUILD applies state to the global {inst.full} itself, not to an instance made from it; "
            "that rewrites attributes of a class, function or module for everything loaded later.",
            op_off,
            inst.full,
        )
    states = list(state) if isinstance(state, tuple) else [state]
    for one in states:
        if isinstance(one, Dct):
            bad = sorted(_DUNDER_STATE.intersection(one.items))
            if bad:
                st.hit(
                    Severity.CRITICAL,
                    f"BUILD plants {bad[0]}",
                    f"The state applied by BUILD sets {', '.join(bad)} on {describe(inst)}; a later "
                    "BUILD or call then runs an arbitrary callable.",
                    op_off,
                    f"{describe(inst)}.{bad[0]}",
                )


@handles("GLOBAL")
def _global(st: WalkState, op: int, op_off: int) -> None:
    module = name_line(st, op_off)
    name = name_line(st, op_off)
    st.stack.append(st.judge(module, name, op_off))


@handles("STACK_GLOBAL")
def _stack_global(st: WalkState, op: int, op_off: int) -> None:
    st.need(2, op_off)
    name_v = st.stack.pop()
    module_v = st.stack.pop()
    if isinstance(module_v, str) and isinstance(name_v, str):
        st.stack.append(st.judge(module_v, name_v, op_off))
        return
    st.hit(
        Severity.CRITICAL,
        "global name built at load time",
        "STACK_GLOBAL takes its module or name from a computed value, which no model "
        f"file needs; the real callable cannot be known ({describe(module_v)}, "
        f"{describe(name_v)}).",
        op_off,
        None,
    )
    st.stack.append(OPAQUE)


@handles("INST")
def _inst(st: WalkState, op: int, op_off: int) -> None:
    module = name_line(st, op_off)
    name = name_line(st, op_off)
    args = st.stack
    st.stack = st.pop_mark(op_off)
    g = st.judge(module, name, op_off)
    st.res.calls += 1
    st.stack.append(made(st, g, tuple(args[:MAX_TUPLE]), op_off, args))


@handles("OBJ")
def _obj(st: WalkState, op: int, op_off: int) -> None:
    args = st.stack
    st.stack = st.pop_mark(op_off)
    if not args:
        raise Malformed(f"OBJ without a class at offset {op_off}")
    _check_callable(st, args[0], op_off, "OBJ")
    st.res.calls += 1
    st.stack.append(made(st, args[0], tuple(args[1 : MAX_TUPLE + 1]), op_off, args[1:]))


@handles("REDUCE")
def _reduce(st: WalkState, op: int, op_off: int) -> None:
    st.need(2, op_off)
    args = st.stack.pop()
    func = st.stack.pop()
    _check_callable(st, func, op_off, "REDUCE")
    st.res.calls += 1
    if isinstance(func, Glob):
        if func.full in _BYTES_LOADERS:
            load_bytes(st, args, op_off)
        elif func.full in _ALLOCATORS:
            _check_alloc(st, func, args, op_off)
    st.stack.append(made(st, func, args, op_off, args))


@handles("NEWOBJ")
def _newobj(st: WalkState, op: int, op_off: int) -> None:
    st.need(2, op_off)
    args = st.stack.pop()
    cls = st.stack.pop()
    _check_callable(st, cls, op_off, "NEWOBJ")
    st.res.calls += 1
    st.stack.append(made(st, cls, args, op_off, args))


@handles("NEWOBJ_EX")
def _newobj_ex(st: WalkState, op: int, op_off: int) -> None:
    st.need(3, op_off)
    st.stack.pop()  # kwargs
    args = st.stack.pop()
    cls = st.stack.pop()
    _check_callable(st, cls, op_off, "NEWOBJ_EX")
    st.res.calls += 1
    st.stack.append(made(st, cls, args, op_off, args))


@handles("BUILD")
def _build(st: WalkState, op: int, op_off: int) -> int | None:
    st.need(2, op_off)
    stack = st.stack
    state = stack.pop()
    inst = stack[-1]
    _check_build(st, inst, state, op_off)
    st.res.calls += 1
    if isinstance(inst, Call):
        inst.state = state
        grow(st, inst, (state,))
        if built_class(inst) in _ARRAY_WRAPPERS:
            if st.frame_end != NO_FRAME and st.s.tell() < st.frame_end:
                st.res.diverged = True
                st.anomaly(
                    "frame-array",
                    "joblib array bytes inside a frame",
                    "joblib ends the frame before writing an array and reads the array from the file "
                    "itself; array bytes inside a frame are read from after the frame by joblib and as "
                    "opcodes by a straight reading.",
                    op_off,
                )
            skip_joblib_array(st, inst, op_off)
            # joblib replaces the wrapper with the array it read (a later BUILD on the array reads
            # nothing); the memo keeps the wrapper, as joblib's does.
            stack[-1] = OPAQUE
            st.frame_end = NO_FRAME  # the array was written (and is read) outside any frame
            return 2
    return None


@handles("EXT1", "EXT2", "EXT4")
def _ext(st: WalkState, op: int, op_off: int) -> None:
    code = int.from_bytes(st.s.read_exact({0x82: 1, 0x83: 2, 0x84: 4}[op]), "little")
    st.hit(
        Severity.HIGH,
        f"extension-registry global (code {code})",
        "The pickle names a callable through the copyreg extension registry, which is empty "
        "unless the loading program registered codes; the callable cannot be resolved "
        "statically.",
        op_off,
        f"<extension code {code}>",
    )
    st.stack.append(OPAQUE)


@handles("PERSID")
def _persid(st: WalkState, op: int, op_off: int) -> None:
    st.s.readline(_PERSID_LINE_MAX)
    st.res.persistent_ids += 1
    st.stack.append(OPAQUE)


@handles("BINPERSID")
def _binpersid(st: WalkState, op: int, op_off: int) -> None:
    st.need(1, op_off)
    pid = st.stack.pop()
    res = st.res
    if (
        isinstance(pid, tuple)
        and len(pid) >= 3
        and pid[0] == "storage"
        and isinstance(pid[1], Glob)
        and isinstance(pid[2], str)
        and len(res.storages) < st.limits.max_memo
    ):
        res.storages[pid[2]] = pid[1].full  # a legacy torch storage: key -> storage type
    res.persistent_ids += 1
    st.stack.append(OPAQUE)


@handles("NEXT_BUFFER")
def _next_buffer(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(OPAQUE)


@handles("READONLY_BUFFER")
def _readonly_buffer(st: WalkState, op: int, op_off: int) -> None:
    st.need(1, op_off)
