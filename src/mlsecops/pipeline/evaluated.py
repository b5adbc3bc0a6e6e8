"""What each stage of a run evaluated: the content digest of every path of every model-facing stage.

The runner hashes each path of a stage whose check looks at models (scanners, attacks, certifiers,
signing, the registry) right before the stage runs and again right after; the record keeps a path's
digest only when both readings agree (a path that changed while the stage ran has ``digest`` null, and
so can gate nothing). The digest is the registry's content identity (``signing.tree_digest``), so the
registry can require a gate run to have evaluated a version's exact bytes (``covers``) instead of
trusting any run that passed. Data stages are not hashed here (their files are data, not the model;
``data register`` keeps their manifests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlsecops.core.checks import CheckKind
from mlsecops.core.errors import MlsecopsError
from mlsecops.pipeline.policy import Rule
from mlsecops.pipeline.spec import Stage
from mlsecops.supplychain import signing

__all__ = [
    "MAX_RECORDED_FILES",
    "MODEL_KINDS",
    "covers",
    "judged_stages",
    "read_paths",
    "stage_record",
]

MODEL_KINDS = frozenset(
    {CheckKind.SCANNER, CheckKind.ATTACK, CheckKind.CERTIFIER, CheckKind.SIGNING, CheckKind.REGISTRY}
)
"""Check kinds that evaluate a model artifact given in the stage's paths (a trainer makes a new one)."""

MAX_RECORDED_FILES = 10_000
"""Per-file digests kept for one path (a directory); beyond it only the whole directory's digest is
kept, which still matches a version registered from that directory, and the record stays small."""


def _read(path: Path) -> dict[str, Any]:
    try:
        files = signing.content_files(path)
    except MlsecopsError as err:
        return {"path": str(path), "digest": None, "error": err.diagnostics()}
    except OSError as err:
        return {"path": str(path), "digest": None, "error": f"cannot read it: {err.strerror or err}"}
    record: dict[str, Any] = {"path": str(path), "digest": signing.tree_digest((n, h) for n, h, _ in files)}
    if len(files) <= MAX_RECORDED_FILES:
        record["files"] = [[n, h] for n, h, _ in files]
    return record


def read_paths(stage: Stage) -> list[dict[str, Any]] | None:
    """The digests of the stage's paths now, or ``None`` for a stage that does not evaluate models."""
    if stage.check.kind not in MODEL_KINDS:
        return None
    return [_read(p) for p in stage.paths]


def stage_record(stage: Stage, before: list[dict[str, Any]] | None, *, judged: bool) -> dict[str, Any] | None:
    """The stage's record: its check, whether the policy judged it, and each path read before the
    stage ran, with the digest dropped where a second reading now differs.
    """
    if before is None:
        return None
    after = [_read(p) for p in stage.paths]
    paths = []
    for b, a in zip(before, after, strict=True):
        if b.get("digest") != a.get("digest"):
            b = {"path": b["path"], "digest": None, "error": "it changed while the stage ran"}
        paths.append(b)
    return {"check": stage.check.name, "kind": str(stage.check.kind), "judged": judged, "paths": paths}


def judged_stages(rules: Iterable[Rule], stages: Sequence[Stage]) -> frozenset[str]:
    """Names of the stages some policy rule judges (a rule without a stage judges every stage)."""
    names: set[str] = set()
    for rule in rules:
        stage = getattr(rule, "stage", None)
        if stage is None:
            return frozenset(s.name for s in stages)
        names.add(str(stage))
    return frozenset(names)


def _covers_path(record: Mapping[str, Any], files: Mapping[str, str], digest: str) -> bool:
    if record.get("digest") is None:
        return False
    if record["digest"] == digest:
        return True
    listed = record.get("files")
    if not isinstance(listed, list):
        return False
    have = {str(n): str(h) for n, h in listed}
    if set(files) == {"."}:  # a single-file version: the file itself, anywhere under the path
        return files["."] in have.values()
    # A directory version: all its files, under one folder of the path, with the same bytes.
    first = next(iter(files))
    for name in have:
        if name == first or name.endswith("/" + first):
            prefix = name[: len(name) - len(first)]
            if all(have.get(prefix + n) == h for n, h in files.items()):
                return True
    return False


def covers(record: Mapping[str, Any], files: Mapping[str, str], digest: str) -> bool:
    """Whether a stage record evaluated the artifact whose files are ``{name: sha256}`` (``"."`` for a
    single file) and whose ``tree_digest`` is ``digest``: one of its paths is that artifact, or holds
    all of its files unchanged.
    """
    paths = record.get("paths")
    if not isinstance(paths, list):
        return False
    return any(isinstance(p, Mapping) and _covers_path(p, files, digest) for p in paths)
