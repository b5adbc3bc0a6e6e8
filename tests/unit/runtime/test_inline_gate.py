"""When the guard answers on the event loop: proven-fast models, small bodies; slow calls turn it off."""

from __future__ import annotations

from mlsecops.runtime.app import (
    INLINE_AFTER,
    INLINE_MAX_BODY,
    INLINE_MODEL_MAX_S,
    INLINE_STALL_S,
    INLINE_STRIKES,
    INLINE_WALL_MAX_S,
    _InlineGate,
)

FAST = INLINE_MODEL_MAX_S / 10


def _proven() -> _InlineGate:
    gate = _InlineGate(True)
    for _ in range(INLINE_AFTER):
        assert not gate.allows(100)
        gate.observe(FAST, FAST, 100)
    assert gate.allows(100)
    return gate


def test_inline_only_after_the_model_proved_fast_and_only_for_small_bodies() -> None:
    gate = _proven()
    assert not gate.allows(INLINE_MAX_BODY + 1)
    assert not _InlineGate(False).allows(100)


def test_one_jittery_call_keeps_it_but_repeated_slow_calls_end_it() -> None:
    gate = _proven()
    gate.observe(FAST, INLINE_WALL_MAX_S * 2, 100)  # the scheduler stretched one call
    assert gate.allows(100)
    for _ in range(INLINE_STRIKES - 1):
        gate.observe(INLINE_MODEL_MAX_S * 2, INLINE_MODEL_MAX_S * 2, 100)
    assert not gate.allows(100)
    # it must prove itself again from scratch, and a slow call during the proof restarts it
    for _ in range(INLINE_AFTER - 1):
        gate.observe(FAST, FAST, 100)
    gate.observe(INLINE_MODEL_MAX_S * 2, INLINE_MODEL_MAX_S * 2, 100)
    assert not gate.allows(100)


def test_one_call_that_burns_cpu_ends_it_at_once() -> None:
    gate = _proven()
    gate.observe(INLINE_STALL_S, INLINE_STALL_S, 100)
    assert not gate.allows(100)


def test_large_bodies_do_not_count() -> None:
    gate = _proven()
    for _ in range(INLINE_STRIKES * 2):
        gate.observe(INLINE_STALL_S * 2, INLINE_STALL_S * 2, INLINE_MAX_BODY + 1)
    assert gate.allows(100)
