"""What the guard serves: a registered model version (verified and scanned) or a local model file.

``MODEL`` in ``mlsecops serve MODEL`` is either a registry reference (``fraud@production``,
``fraud@champion``, ``fraud@3``; ``fraud`` alone is ``fraud@latest``) or a model file or directory.

A registry version is copied out of the artifact store into a private folder, its signature is
verified over that copy with the workspace's trusted (unrevoked) key, the copy is scanned, and only
then is the model loaded from the same copy through the model adapters (``safe_load`` scans the bytes
it loads once more). A version without a signature, signed by an untrusted key, whose files do not
match the signature, or not scanned ``safe`` is refused with one line. A local file or directory is
scanned and loaded through the same adapters; it is served under its file stem unless named.

A reference that is not pinned to a version (a stage, an alias, ``latest``) is *followed*:
:class:`AliasFollower` polls the model's cheap state token (its ``generation`` and newest version
number) about once a second, and when the reference moves it loads, verifies and scans the new
version in its own thread, installs it with one reference swap (requests in flight finish on the
model they started with, so none fails), and records ``runtime.model_switched`` in the audit trail.
A version that fails verification or the scan is not served; ``runtime.model_switch_refused`` is
recorded once for it and the server keeps the model it has.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mlsecops.core.errors import InputError, MlsecopsError, VerificationError
from mlsecops.models import ModelAdapter, load_model
from mlsecops.models.loading import MODEL_SUFFIXES
from mlsecops.registry import parse_ref, resolve, scan_artifact
from mlsecops.registry._tables import RegisteredModel, TrustedKey
from mlsecops.store import Workspace, audit
from mlsecops.supplychain import signing

__all__ = [
    "ALIAS_POLL_S",
    "AliasFollower",
    "ServedModel",
    "is_registry_ref",
    "load_local",
    "load_registered",
    "load_served",
]

log = logging.getLogger("mlsecops.runtime")

ALIAS_POLL_S = 1.0
"""How often a followed stage or alias is checked (one indexed single-row query): the longest a
promotion or rollback waits before the server starts switching."""
ACTOR = "mlsecops-serve"
"""Actor of the audit events the server writes itself."""


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and where it came from.

    Attributes:
        name: the name it is served under.
        version: the registry version number, or the first 12 hex digits of a local file's SHA-256.
        adapter: the model (probabilities, classes, input shape).
        digest: the registry's content digest, or the local file's SHA-256.
        source: ``registry:NAME@VERSION`` or the local path.
        platform: ``sklearn``, ``onnx`` or ``pytorch``.
        ref: the registry reference followed (``fraud@production``), None for pinned or local models.
        version_id: the registry's row id of the version (None for local models).
    """

    name: str
    version: str
    adapter: ModelAdapter
    digest: str
    source: str
    platform: str
    ref: str | None = None
    version_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input row."""
        return tuple(self.adapter.input_shape)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return int(self.adapter.n_classes)


def _platform(adapter: ModelAdapter) -> str:
    kind = type(adapter).__name__
    return {"SklearnModel": "sklearn", "OnnxModel": "onnx", "TorchModel": "pytorch"}.get(kind, kind.lower())


def is_registry_ref(spec: str) -> bool:
    """Whether ``spec`` names a registry model rather than a local file (a path that exists wins)."""
    if Path(spec).exists():
        return False
    if "@" in spec:
        return True
    return "/" not in spec and Path(spec).suffix.lower() not in MODEL_SUFFIXES


def _model_file(root: Path, what: str) -> Path:
    """The one model file of a file or directory.

    Raises:
        InputError: a directory with no model file or several (which one to serve would be a guess).
    """
    if root.is_file():
        return root
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    if len(found) != 1:
        names = ", ".join(str(p.relative_to(root)) for p in found[:5]) or "none"
        raise InputError(
            f"{what} must hold exactly one model file ({'/'.join(MODEL_SUFFIXES)}); found {names}"
        )
    return found[0]


def _load_scanned(root: Path, what: str) -> ModelAdapter:
    """Scan ``root`` (file or directory) and load its model through the adapters.

    Raises:
        VerificationError: the scan verdict is not ``safe``.
    """
    outcome = scan_artifact(root)
    if outcome.verdict != "safe":
        raise VerificationError(
            f"{what}: the scan verdict is {outcome.verdict}, not safe: {outcome.headline()}"
        )
    return load_model(_model_file(root, what))


def load_local(path: Path, *, name: str | None = None) -> ServedModel:
    """Scan and load a local model file or directory.

    Raises:
        InputError: missing path, no (or several) model files, a file the adapters cannot load.
        VerificationError: not scanned ``safe``.
    """
    if not path.exists():
        raise InputError(f"model {path} does not exist (and is not a registry reference NAME@VERSION)")
    what = str(path)
    model_file = _model_file(path, what)
    adapter = _load_scanned(path, what)
    sha = hashlib.sha256()
    with model_file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    digest = sha.hexdigest()
    served_name = name or (path.stem if path.is_file() else path.name)
    return ServedModel(
        name=served_name,
        version=digest[:12],
        adapter=adapter,
        digest=digest,
        source=what,
        platform=_platform(adapter),
    )


@dataclass(frozen=True)
class _VersionRow:
    model_name: str
    version: int
    version_id: int
    digest: str
    files: list[tuple[str, str, int]]
    signature: str | None
    key_pem: str | None
    key_hint: str | None
    source_name: str


def _read_version(ws: Workspace, ref: str) -> _VersionRow:
    with ws.session(readonly=True) as s:
        model, v = resolve(s, ref)
        trusted = None
        if v.signature_key_hint:
            trusted = s.execute(
                select(TrustedKey).where(
                    TrustedKey.key_hint == v.signature_key_hint, TrustedKey.revoked.is_(None)
                )
            ).scalar_one_or_none()
        return _VersionRow(
            model_name=model.name,
            version=v.version,
            version_id=v.id,
            digest=v.digest,
            files=[(str(n), str(sha), int(size)) for n, sha, size in json.loads(v.files)],
            signature=v.signature,
            key_pem=trusted.pem if trusted is not None else None,
            key_hint=v.signature_key_hint,
            source_name=v.source_name,
        )


def load_registered(ws: Workspace, ref: str, *, follow: str | None = None) -> ServedModel:
    """Resolve ``ref``, verify the version's signature with a trusted key, scan it, load it.

    Args:
        ws: the workspace.
        ref: ``NAME@VERSION|STAGE|ALIAS``.
        follow: the reference being followed, recorded on the result (defaults to ``ref`` unless pinned).

    Raises:
        InputError: unknown model, version, stage or alias; a version with no loadable model file.
        VerificationError: unsigned, signed by a key that is not trusted (or revoked), files that do not
            match the signature, or a scan verdict that is not ``safe``.
    """
    row = _read_version(ws, ref)
    what = f"{row.model_name}@{row.version}"
    if not row.signature:
        raise VerificationError(f"{what} is not signed; only signed, verified versions are served")
    if row.key_pem is None:
        raise VerificationError(
            f"{what} is signed by key {str(row.key_hint)[:16]}..., which is not a trusted key of this workspace"
        )
    stage = Path(tempfile.mkdtemp(prefix="mlsecops-serve-"))
    try:
        single = len(row.files) == 1 and row.files[0][0] == "."
        root = stage / "model"
        copies: dict[str, Path] = {}
        for rel, sha, _size in row.files:
            dest = stage / "model.file" if rel == "." else root / rel
            if not single and not dest.resolve().is_relative_to(root.resolve()):
                raise VerificationError(f"{what}: a stored file name leaves the model folder: {rel!r}")
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # a private copy, not a link: what is verified and scanned is what is loaded
            ws.artifacts.copy_out(sha, dest)
            copies[rel] = dest
        if single:
            suffix = Path(row.source_name).suffix.lower()
            if suffix not in MODEL_SUFFIXES:
                raise InputError(
                    f"{what} was registered from {row.source_name!r}, not a model file the adapters load"
                )
            target = stage / f"model{suffix}"
            os.replace(copies["."], target)
            copies["."] = target
            root = target
        try:
            signing.verify_files(
                copies, row.signature.encode(), signing.public_key_from_pem(row.key_pem.encode())
            )
        except MlsecopsError as err:
            raise VerificationError(f"{what}: the signature does not verify: {err.diagnostics()}") from None
        adapter = _load_scanned(root, what)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    pinned = (parse_ref(ref)[1] or "").isdigit()
    return ServedModel(
        name=row.model_name,
        version=str(row.version),
        adapter=adapter,
        digest=row.digest,
        source=f"registry:{what}",
        platform=_platform(adapter),
        ref=follow if follow is not None else (None if pinned else ref),
        version_id=row.version_id,
    )


def load_served(ws: Workspace | None, spec: str, *, name: str | None = None) -> ServedModel:
    """Load what ``mlsecops serve MODEL`` names: a registry reference or a local path.

    Raises:
        InputError, VerificationError: see ``load_registered`` and ``load_local``.
    """
    if is_registry_ref(spec):
        if ws is None:
            raise InputError(f"{spec} is a registry reference; it needs a workspace (`mlsecops init`)")
        if name is not None and name != parse_ref(spec)[0]:
            raise InputError("--name applies to local model files; a registry model is served under its name")
        return load_registered(ws, spec)
    return load_local(Path(spec), name=name)


class AliasFollower:
    """Follow a stage or alias: load, verify and install the version it points at when it moves.

    Args:
        ws: the workspace.
        current: the model served now (its ``ref`` is the reference followed).
        install: called (in this follower's thread) with the new model once it is verified and loaded;
            it must make the swap atomic (one reference assignment).
        interval: seconds between checks.
    """

    def __init__(
        self,
        ws: Workspace,
        current: ServedModel,
        install: Callable[[ServedModel], None],
        *,
        interval: float = ALIAS_POLL_S,
    ) -> None:
        if current.ref is None:
            raise InputError(f"{current.source} is pinned; there is nothing to follow")
        self.ws = ws
        self.ref = current.ref
        self.current = current
        self.install = install
        self.interval = interval
        self.switches = 0
        self._token: tuple[int, int] | None = None
        self._refused: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlsecops-alias-follower", daemon=True)

    def start(self) -> None:
        """Start polling in a daemon thread."""
        self._token = self._read_token()
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (waits for a load in progress)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _read_token(self) -> tuple[int, int] | None:
        name = parse_ref(self.ref)[0]
        with self.ws.session(readonly=True) as s:
            row = s.execute(
                select(RegisteredModel.generation, RegisteredModel.last_version).where(
                    RegisteredModel.name == name
                )
            ).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as err:  # the database went away, a bug: keep serving, try again
                log.warning("alias check for %s failed: %s", self.ref, " ".join(str(err).split())[:300])

    def check(self) -> bool:
        """Check once; switch if the reference moved. Returns True when it switched."""
        token = self._read_token()
        if token is None or token == self._token:
            return False
        with self.ws.session(readonly=True) as s:
            _model, v = resolve(s, self.ref)
            target_id, target_version = v.id, v.version
        if target_id == self.current.version_id or target_id in self._refused:
            self._token = token
            return False
        name = parse_ref(self.ref)[0]
        pinned = f"{name}@{target_version}"
        try:
            new = load_registered(self.ws, pinned, follow=self.ref)
        except MlsecopsError as err:
            self._refused.add(target_id)
            self._token = token
            self._record(
                "runtime.model_switch_refused",
                pinned,
                {"ref": self.ref, "serving": self.current.version, "reason": err.diagnostics()[:500]},
            )
            log.warning("not switching %s to %s: %s", self.ref, pinned, err.diagnostics())
            return False
        old = self.current
        # recorded first: a switch the audit trail cannot hold (database gone) does not happen; the
        # next check tries again
        self._record(
            "runtime.model_switched",
            pinned,
            {
                "ref": self.ref,
                "from": old.version,
                "to": new.version,
                "from_digest": old.digest,
                "to_digest": new.digest,
                "pid": os.getpid(),
            },
        )
        self.install(new)
        self.current = new
        self._token = token
        self.switches += 1
        log.info("switched %s from version %s to %s", self.ref, old.version, new.version)
        return True

    def _record(self, action: str, subject: str, details: dict[str, Any]) -> None:
        with self.ws.session() as s:
            audit.append(s, actor=ACTOR, action=action, subject=subject, details=details)
