"""Pipeline files: named stages, each a registered check, plus the policy that gates the run.

::

    name: fraud-model                 # shown in reports and the audit trail
    seed: 0                           # every stage gets it; the same seed gives the same reports
    stages:
      - name: scan                    # unique stage name, used by policy rules
        check: artifact.scan          # a registered check (`mlsecops checks` lists them)
        paths: [model/]               # relative to this file
        options: {max_seconds: 30}    # check-specific; relative paths resolve against this file too
    policy:                           # or: policy: policy.yaml (a file holding the list)
      - {stage: scan, max_severity: low}

Loading validates everything that can be validated before a stage runs: the YAML, every key (each
stage's ``options`` against the keys its check declares), the check names and the policy's stages and metrics. A bad file is a ``ConfigError`` and nothing runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsecops.core.checks import CheckSpec, get_check
from mlsecops.core.errors import ConfigError
from mlsecops.core.inputs import load_yaml
from mlsecops.pipeline.policy import Rule, parse_rules

__all__ = ["MAX_PIPELINE_BYTES", "Pipeline", "Stage", "load_pipeline"]

MAX_PIPELINE_BYTES = 1 << 20
"""Largest pipeline or policy file read (1 MiB); larger files are refused before parsing."""
_STAGE_KEYS = {"name", "check", "paths", "options", "description"}
_TOP_KEYS = {"name", "description", "seed", "stages", "policy"}


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline."""

    name: str
    check: CheckSpec
    paths: tuple[Path, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Pipeline:
    """A loaded, validated pipeline."""

    name: str
    source: Path
    sha256: str
    stages: tuple[Stage, ...]
    rules: tuple[Rule, ...]
    seed: int = 0
    description: str = ""

    @property
    def base_dir(self) -> Path:
        """The folder relative paths are resolved against."""
        return self.source.parent


def _read_yaml(path: Path, what: str) -> tuple[Any, bytes]:
    # The one bounded YAML reader: regular files only, size, nesting and alias expansion limited.
    return load_yaml(path, what=what, max_bytes=MAX_PIPELINE_BYTES)


def _json_like(value: Any, where: str) -> None:
    """Options travel as JSON (reports, the database): refuse what JSON cannot hold, such as
    non-string keys. The YAML reader bounds the nesting depth, so this recursion is bounded too.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where}: keys must be strings; got {key!r}")
            _json_like(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _json_like(item, where)
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise ConfigError(f"{where}: {type(value).__name__} values are not allowed")


def _stage(raw: Any, index: int, base: Path, seen: set[str]) -> Stage:
    where = f"stage {index}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with at least `name` and `check`")
    unknown = set(raw) - _STAGE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_STAGE_KEYS)}")
    name, check = raw.get("name"), raw.get("check")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} needs a `name`")
    if name in seen:
        raise ConfigError(f"stage name {name!r} is used twice; stage names must be unique")
    seen.add(name)
    if not isinstance(check, str):
        raise ConfigError(f"stage {name!r} needs a `check` naming a registered check")
    spec = get_check(check)
    paths_raw = raw.get("paths", [])
    if isinstance(paths_raw, str):
        paths_raw = [paths_raw]
    if not isinstance(paths_raw, list) or not all(isinstance(p, str) for p in paths_raw):
        raise ConfigError(f"stage {name!r}: `paths` must be a list of path strings")
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"stage {name!r}: `options` must be a mapping")
    _json_like(options, f"stage {name!r}: options")
    # An unknown key (a typo such as `epz`) would otherwise be ignored and the default used silently.
    spec.check_options(options, where=f"stage {name!r}")
    paths = tuple(p if p.is_absolute() else base / p for p in (Path(x).expanduser() for x in paths_raw))
    return Stage(
        name=name, check=spec, paths=paths, options=options, description=str(raw.get("description", ""))
    )


def load_pipeline(path: Path, *, policy_path: Path | None = None) -> Pipeline:
    """Read and validate a pipeline file (and optionally a separate policy file that replaces its policy).

    Raises:
        InputError: the file is missing or unreadable.
        ConfigError: the YAML is invalid, a key or check is unknown, or the policy does not fit the stages.
    """
    data, raw = _read_yaml(path, "pipeline file")
    if not isinstance(data, dict):
        raise ConfigError(f"pipeline file {path} must hold a mapping with `stages`")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"pipeline file {path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}"
        )
    stages_raw = data.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise ConfigError(f"pipeline file {path} needs a non-empty `stages` list")
    base = path.resolve().parent
    seen: set[str] = set()
    stages = tuple(_stage(s, i, base, seen) for i, s in enumerate(stages_raw, start=1))
    policy: Any = data.get("policy")
    digest = hashlib.sha256(raw)
    if policy_path is not None:
        policy, policy_raw = _read_yaml(policy_path, "policy file")
        digest.update(policy_raw)
    elif isinstance(policy, str):
        policy, policy_raw = _read_yaml(base / policy, "policy file")
        digest.update(policy_raw)
    if isinstance(policy, dict) and "policy" in policy:
        policy = policy["policy"]
    rules = parse_rules(policy, {s.name: s.check for s in stages})
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"pipeline file {path}: `seed` must be an integer")
    name = data.get("name", path.stem)
    return Pipeline(
        name=str(name),
        source=path.resolve(),
        sha256=digest.hexdigest(),
        stages=stages,
        rules=tuple(rules),
        seed=seed,
        description=str(data.get("description", "")),
    )
