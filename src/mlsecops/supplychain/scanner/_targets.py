"""``_target_`` keys in configuration text (Hydra / OmegaConf ``instantiate``).

``hydra.utils.instantiate(cfg)`` imports the dotted path a ``_target_`` key names and calls it with the
sibling keys as arguments, so a model configuration (a NeMo ``.nemo`` archive carries
``model_config.yaml``; many training repos ship Hydra YAML beside the weights) can run code when the
model is built. Found in any text we search (YAML, JSON, unrecognised bytes, entries of archives) and
judged with the same policy as pickle globals. Only deny-listed targets are reported: ordinary configs
name arbitrary model classes, which are not evidence of anything.

A configuration that switches ``trust_remote_code`` on is reported too (medium): code that reads it
(for example a data-loading section handed to ``datasets.load_dataset``) fetches and runs code from
another repository.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._policy import Rule, judge
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["scan_targets"]

# Literal prefix first: the regex engine then scans at memchr speed through large unrecognised data.
_REMOTE_CODE = re.compile(rb"""trust_remote_code["']?[ \t]*[:=][ \t]*["']?(?:true|True|TRUE|yes|1)\b""")
_TARGET = re.compile(
    rb"""_target_["']?[ \t]*[:=][ \t]*["']?([A-Za-z_]\w{0,100}(?:\.[A-Za-z_]\w{0,100}){1,20})"""
)


def scan_targets(
    data: bytes, *, base: int, entry: str, report: Callable[[Hit], None], seen: set[int] | None = None
) -> None:
    """Report every ``_target_`` in ``data`` that names a deny-listed callable, and ``trust_remote_code``.

    Args:
        data: text to search (any encoding that keeps ASCII as is).
        base: offset of ``data`` in the artifact, for the hits.
        entry: entry name for the hits.
        report: receives each hit.
        seen: offsets already reported (for overlapping chunks).
    """
    seen = set() if seen is None else seen
    for offset, _ in _new_matches(_REMOTE_CODE, data, base, seen):
        report(
            Hit(
                Severity.MEDIUM,
                "config enables trust_remote_code",
                "The configuration switches trust_remote_code on; a loader that passes it on fetches and runs "
                "code from another repository.",
                kind="config",
                entry=entry,
                offset=offset,
                atlas=ATLAS_ARTIFACT,
                remediation="Remove trust_remote_code from the configuration, or review the code it would load.",
            )
        )
    for offset, m in _new_matches(_TARGET, data, base, seen):
        module, _, name = m.group(1).decode("ascii").rpartition(".")
        j = judge(module, name)
        if j.rule is not Rule.DENY:
            continue
        report(
            Hit(
                Severity.CRITICAL,
                f"config _target_ calls {j.name}",
                f"A _target_ key names {j.name} ({j.reason}); building the model with Hydra/OmegaConf "
                "instantiate() imports and calls it.",
                kind="config",
                entry=entry,
                offset=offset,
                callable=j.name,
                atlas=ATLAS_ARTIFACT,
                remediation="Do not instantiate this configuration; review every _target_ it names.",
            )
        )


def _new_matches(
    pattern: re.Pattern[bytes], data: bytes, base: int, seen: set[int]
) -> Iterator[tuple[int, re.Match[bytes]]]:
    """Matches of ``pattern`` whose artifact offset was not reported yet (chunks overlap)."""
    for m in pattern.finditer(data):
        offset = base + m.start()
        if offset not in seen:
            seen.add(offset)
            yield offset, m
