"""Manifests: every file (or shard) of a model with its digest, and how it was serialized.

``Serialization`` is the ``predicate.serialization`` object of the model-signing format: the method
(``files``: one digest per file; ``shards``: one per ``shard_size`` bytes of each file), the hash type,
whether symlinks are followed and which paths are ignored. ``build_manifest`` walks a model directory
(or takes a single file) with that configuration; ``compare`` names every changed, added, removed or
renamed file.

Path safety: names are POSIX paths relative to the model root. A symlink is refused unless
``allow_symlinks`` is set, and even then one whose target resolves outside the model directory is
refused; FIFOs, sockets and devices are refused. Names read from a signature that are absolute or
contain ``..`` are refused before anything is compared.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.supplychain.signing._hashing import HashAlgorithm, HashTask, hash_tasks

__all__ = [
    "DEFAULT_IGNORE",
    "Manifest",
    "Serialization",
    "build_manifest",
    "check_name",
    "compare",
    "manifest_from_files",
    "model_files",
]

DEFAULT_IGNORE = (".git", ".gitattributes", ".github", ".gitignore")
"""Paths model-signing ignores by default; we ignore the same so signatures agree."""


@dataclass(frozen=True)
class Serialization:
    """How a model was turned into a manifest (the signed ``predicate.serialization``)."""

    method: str = "files"
    """``files`` or ``shards``."""
    hash_type: HashAlgorithm = HashAlgorithm.SHA256
    shard_size: int | None = None
    """Bytes per shard (``shards`` only)."""
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = DEFAULT_IGNORE

    def to_json(self) -> dict[str, Any]:
        """The ``predicate.serialization`` object."""
        out: dict[str, Any] = {
            "method": self.method,
            "hash_type": str(self.hash_type),
            "allow_symlinks": self.allow_symlinks,
            "ignore_paths": list(self.ignore_paths),
        }
        if self.method == "shards":
            out["shard_size"] = self.shard_size
        return out

    @property
    def algorithm_name(self) -> str:
        """The ``algorithm`` recorded on each resource."""
        if self.method == "shards":
            return f"{self.hash_type.digest_name}-sharded-{self.shard_size}"
        return self.hash_type.digest_name

    @classmethod
    def from_json(cls, raw: object) -> Serialization:
        """Parse a signed serialization object.

        Raises:
            VerificationError: unknown method or hash type, or malformed fields.
        """
        if not isinstance(raw, dict):
            raise VerificationError("the signature's predicate has no serialization object")
        method = raw.get("method")
        if method not in ("files", "shards"):
            raise VerificationError(
                f"the signature uses serialization method {method!r}; we know files, shards"
            )
        try:
            name = str(raw.get("hash_type", "sha256"))
            hash_type = HashAlgorithm("blake2b" if name == "blake2" else name)
        except ValueError:
            raise VerificationError(
                f"the signature uses unknown hash type {raw.get('hash_type')!r}"
            ) from None
        shard_size: int | None = None
        if method == "shards":
            # model-signing 1.1.1 stores shard_size as a JSON float (1024.0) via protobuf Struct.
            size = raw.get("shard_size")
            if not isinstance(size, int | float) or isinstance(size, bool) or size != int(size) or size <= 0:
                raise VerificationError(f"the signature's shard_size {size!r} is not a positive integer")
            shard_size = int(size)
        ignore = raw.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise VerificationError("the signature's ignore_paths is not a list of paths")
        return cls(
            method=method,
            hash_type=hash_type,
            shard_size=shard_size,
            allow_symlinks=bool(raw.get("allow_symlinks", False)),
            ignore_paths=tuple(ignore),
        )


@dataclass(frozen=True)
class Manifest:
    """A model's files (or shards) and their digests."""

    model_name: str
    digests: dict[str, str]
    """``{name: hex digest}``; names are relative POSIX paths (``path:start:end`` for shards)."""
    serialization: Serialization = field(default_factory=Serialization)

    def sorted_items(self) -> list[tuple[str, str]]:
        """Items in canonical order (by path, then shard start), as they appear in the predicate."""

        def order(item: tuple[str, str]) -> tuple[str, int]:
            name = item[0]
            if self.serialization.method == "shards":
                path, start, _ = name.rsplit(":", 2)
                return path, int(start)
            return name, 0

        return sorted(self.digests.items(), key=order)


def check_name(name: str) -> str:
    """Refuse a manifest name that is absolute or walks up (``..``).

    Raises:
        VerificationError: the name could escape the model directory.
    """
    p = PurePosixPath(name)
    if name == ".":
        return name
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or "\x00" in name:
        raise VerificationError(f"the signature names {name!r}, a path outside the model directory; refused")
    return name


def _ignored(rel: str, ignore: tuple[str, ...]) -> bool:
    return any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in ignore)


def _walk(root: Path, ser: Serialization, ignore: tuple[str, ...]) -> Iterator[tuple[str, Path, int]]:
    """Yield ``(name, path to read, size)`` for every file under ``root``, refusing unsafe entries."""
    real_root = root.resolve()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as err:
            raise InputError(f"cannot list {folder}: {err.strerror or err}") from err
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(root).as_posix()
            if _ignored(rel, ignore):
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    raise InputError(f"{rel} is a symlink to {target}, outside the model directory; refused")
                if not ser.allow_symlinks:
                    raise InputError(
                        f"{rel} is a symlink; refused (sign with --allow-symlinks to follow links that stay "
                        "inside the model directory)"
                    )
                if target.is_dir():
                    raise InputError(f"{rel} is a symlink to a directory; refused")
                if not target.is_file():
                    raise InputError(f"{rel} is a broken symlink or not a regular file; refused")
                yield rel, target, target.stat().st_size
            elif stat.S_ISDIR(st.st_mode):
                stack.append(path)
            elif stat.S_ISREG(st.st_mode):
                yield rel, path, st.st_size
            else:
                raise InputError(f"{rel} is not a regular file (FIFO, socket or device); refused")


def _tasks(
    files: Iterator[tuple[str, Path, int]], ser: Serialization, *, root: Path | None = None
) -> Iterator[HashTask]:
    for name, path, size in files:
        # A file of the walked folder (not a followed symlink) is reopened from the folder without
        # following a symlink swapped in on the way since the walk.
        base = root if root is not None and path == root / name else None
        if ser.method == "files":
            yield HashTask(name, path, size=size, root=base, rel=name)
            continue
        shard = ser.shard_size or 1
        # An empty file has no shard, as in model-signing; so the shard method cannot see an empty file
        # being added or removed (the files method can, and is the default).
        for start in range(0, size, shard):
            end = min(size, start + shard)
            yield HashTask(
                f"{name}:{start}:{end}", path, start, end, end - start, file_size=size, root=base, rel=name
            )


def build_manifest(
    path: Path,
    ser: Serialization,
    *,
    extra_ignore: tuple[Path, ...] = (),
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Hash the model at ``path`` (a file or a directory) into a manifest.

    Args:
        path: the model file or directory.
        ser: serialization to use.
        extra_ignore: files to leave out wherever they are (the signature file, when it sits inside).
        workers: hashing threads.
        on_progress: called with bytes hashed.

    Raises:
        InputError: the path is missing, or holds an unsafe entry (symlink escape, FIFO, device).
    """
    if path.is_symlink() and not ser.allow_symlinks:
        raise InputError(f"{path} is a symlink; pass the real model path")
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_file():
        # A single-file model's one entry is named "." (its path relative to itself), as model-signing does.
        files: Iterator[tuple[str, Path, int]] = iter([(".", path, path.stat().st_size)])
    elif path.is_dir():
        ignore = ser.ignore_paths
        root = path.resolve()
        for extra in extra_ignore:
            resolved = extra.resolve()
            if resolved.is_relative_to(root):
                ignore = (*ignore, resolved.relative_to(root).as_posix())
        files = _walk(path, ser, ignore)
    else:
        raise InputError(f"{path} is neither a file nor a directory")
    walked = path if path.is_dir() else None
    digests = hash_tasks(
        _tasks(files, ser, root=walked), ser.hash_type, workers=workers, on_progress=on_progress
    )
    return Manifest(model_name=path.resolve().name, digests=digests, serialization=ser)


def model_files(
    path: Path, *, allow_symlinks: bool = False, extra_ignore: tuple[Path, ...] = ()
) -> list[tuple[str, Path, int]]:
    """The files of a model as ``(name, path to read, size)``, with the same path safety as signing.

    A single file is named by its file name here (not ``"."``), for storing it under that name.

    Raises:
        InputError: missing path or an unsafe entry (symlink escape, FIFO, device).
    """
    if path.is_symlink() and not allow_symlinks:
        raise InputError(f"{path} is a symlink; pass the real model path")
    if path.is_file():
        return [(path.name, path, path.stat().st_size)]
    if not path.is_dir():
        raise InputError(f"{path} does not exist or is neither a file nor a directory")
    ser = Serialization(allow_symlinks=allow_symlinks)
    ignore = ser.ignore_paths
    root = path.resolve()
    for extra in extra_ignore:
        resolved = extra.resolve()
        if resolved.is_relative_to(root):
            ignore = (*ignore, resolved.relative_to(root).as_posix())
    return sorted(_walk(path, ser, ignore))


def manifest_from_files(
    files: Mapping[str, Path], ser: Serialization, *, model_name: str, workers: int | None = None
) -> Manifest:
    """Hash files given as ``{name: path}`` (e.g. blobs in the artifact store) into a manifest."""
    items = ((check_name(n), p, p.stat().st_size) for n, p in files.items())
    digests = hash_tasks(_tasks(items, ser), ser.hash_type, workers=workers)
    return Manifest(model_name=model_name, digests=digests, serialization=ser)


def _strip_shard(name: str) -> str:
    parts = name.rsplit(":", 2)
    return parts[0] if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() else name


def _names(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def compare(signed: Manifest, actual: Manifest) -> list[str]:
    """What differs between the signed manifest and the files on disk; empty when they match.

    Each entry names files: ``modified``, ``added`` (not signed), ``removed``, ``renamed`` (a removed
    file whose content reappears under a new name).
    """
    shards = signed.serialization.method == "shards"
    key = _strip_shard if shards else (lambda n: n)

    def by_file(m: Manifest) -> dict[str, tuple[tuple[str, str], ...]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for name, digest in m.sorted_items():
            out.setdefault(key(name), []).append((name, digest))
        return {k: tuple(v) for k, v in out.items()}

    want, have = by_file(signed), by_file(actual)
    removed = sorted(set(want) - set(have))
    added = sorted(set(have) - set(want))
    modified = sorted(n for n in set(want) & set(have) if want[n] != have[n])
    content_of_added = {tuple(d for _, d in have[n]): n for n in added}
    renamed: list[str] = []
    for n in list(removed):
        new = content_of_added.get(tuple(d for _, d in want[n]))
        if new is not None and new in added:
            renamed.append(f"{n!r} -> {new!r}")
            removed.remove(n)
            added.remove(new)
    problems = []
    if modified:
        problems.append(f"modified: {_names(modified)}")
    if renamed:
        problems.append(f"renamed: {', '.join(renamed[:5])}" + (" ..." if len(renamed) > 5 else ""))
    if removed:
        problems.append(f"removed: {_names(removed)}")
    if added:
        problems.append(f"added (not signed): {_names(added)}")
    return problems
