"""The executor a check's options name: ``executor`` (engine), ``workers`` and ``address``.

Checks that can fan out (sharded robustness and certification, the poisoning detectors' folds) read
these three options the same way; without ``executor`` they run in this process, as before.
"""

from __future__ import annotations

from mlsecops.core.checks import Target
from mlsecops.core.executor import ENGINES, Executor, ProgressFn, get_executor

__all__ = ["EXECUTOR_OPTIONS", "executor_from_target"]

EXECUTOR_OPTIONS = ("executor", "workers", "address")
"""Option names read by ``executor_from_target``."""


def executor_from_target(target: Target, progress: ProgressFn | None = None) -> Executor | None:
    """The executor named by ``target``'s options, or None when ``executor`` is not set.

    Raises:
        ConfigError: an unknown engine, a bad worker count, or an address for a local engine.
    """
    engine = target.opt_choice("executor", sorted(ENGINES))
    if engine is None:
        if target.opt_str("address") is not None:
            from mlsecops.core.errors import ConfigError

            raise ConfigError("option address needs executor=ray")
        return None
    return get_executor(
        engine,
        workers=target.opt_int("workers", lo=1),
        progress=progress,
        address=target.opt_str("address"),
    )
