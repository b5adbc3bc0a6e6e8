"""Bounded readers for the text inputs users hand us: YAML and JSON files, read once, parsed safely.

Every pipeline file, policy file, model card, baseline profile and signature bundle goes through here,
so a limit added once protects every caller. What the readers guarantee:

- ``read_regular_file`` reads only a regular file, and at most ``limit`` bytes of it. The file is
  opened non-blocking and checked with ``fstat`` on the open descriptor before a byte is read, so a
  FIFO, a terminal or ``/dev/zero`` given as a policy file is refused at once instead of blocking or
  filling memory, and a file swapped after the check is not the one read.
- ``parse_yaml`` builds plain data only (PyYAML's safe loader: no Python objects from tags), after a
  streaming pass over the parser's events (which keeps its own stack, so it cannot overflow Python's)
  has checked the nesting depth, the number of aliases, recursive aliases and how many nodes the
  aliases would add when the document is walked. A "billion laughs" file of a few hundred bytes
  (``&a [x, x]``, ``&b [*a, *a]``, ...) is refused before anything expands it.
- ``parse_json`` refuses nesting deeper than ``MAX_NESTING_DEPTH`` before ``json.loads`` sees the
  text, so a document nested 100,000 deep is a one-line ``InputError``, not a ``RecursionError`` in
  the decoder or in any code that walks the result afterwards.

What they do not do: validate the meaning of what was read (each caller checks its own keys and
types), or bound the size of one scalar beyond the file-size limit.

Errors: file-level problems and hostile structure (missing, not a regular file, too large, not
UTF-8, too deep, too many aliases) are ``InputError``; YAML that does not parse or uses a tag the
safe loader refuses is ``ConfigError`` (YAML files are configuration); JSON that does not parse is
``InputError``. Every message names the input (``what``) and the path.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from mlsecops.core.errors import ConfigError, InputError

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_NESTING_DEPTH",
    "MAX_YAML_ALIASES",
    "MAX_YAML_ALIAS_NODES",
    "MAX_YAML_BYTES",
    "load_json",
    "load_yaml",
    "parse_json",
    "parse_yaml",
    "read_regular_file",
]

MAX_YAML_BYTES = 1 << 20
"""Default size limit of a YAML file (pipeline, policy, model card): 1 MiB of configuration."""

MAX_JSON_BYTES = 16 << 20
"""Default size limit of a JSON file; callers that read larger documents (profiles) pass their own."""

MAX_NESTING_DEPTH = 64
"""Deepest nesting of lists/mappings accepted in YAML and JSON. Our own formats nest fewer than 10
levels; the limit keeps every recursive walk of the data (composer, validation, ``json.dumps``) far
below Python's recursion limit."""

MAX_YAML_ALIASES = 100
"""Most alias references (``*name``) one YAML document may hold. Hand-written configuration uses a few."""

MAX_YAML_ALIAS_NODES = 10_000
"""Most nodes that aliases may add to a YAML document when it is walked (each ``*name`` counts the
full expanded size of its anchor). Bounds the work of every consumer that walks the loaded data; the
nodes written out in the file are bounded by the file size instead."""

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_READ_FLAGS |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_regular_file(path: str | Path, *, limit: int, what: str = "file") -> bytes:
    """Read a whole regular file of at most ``limit`` bytes.

    The file is opened non-blocking and checked on the open descriptor, so devices, FIFOs and sockets
    are refused without a read (that would block or never end), and the size check and the read refer
    to the same file.

    Args:
        path: the file.
        limit: the largest accepted size in bytes.
        what: what the file is, for messages (``"policy file"``).

    Returns:
        The file's bytes.

    Raises:
        InputError: missing, a directory, not a regular file, larger than ``limit``, or unreadable.
    """
    p = Path(path)
    try:
        fd = os.open(p, _READ_FLAGS)
    except FileNotFoundError:
        raise InputError(f"{what} {p} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} {p} is a directory, not a file") from None
    except OSError as err:
        raise InputError(f"cannot read {what} {p}: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{what} {p} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} {p} is not a regular file (a device, FIFO or socket); give a file path")
        if st.st_size > limit:
            raise InputError(f"{what} {p} is {st.st_size} bytes; the limit is {limit} bytes")
    except BaseException:
        os.close(fd)
        raise
    chunks: list[bytes] = []
    with os.fdopen(fd, "rb", buffering=0, closefd=True) as fh:
        try:
            remaining = limit + 1
            # A bounded number of reads: each returns at least one byte or ends the loop, and at most
            # ``limit + 1`` bytes are taken in all, so a file that grows while we read stays bounded.
            for _ in range(limit + 2):
                block = fh.read(min(remaining, 1 << 20))
                if not block:
                    break
                chunks.append(block)
                remaining -= len(block)
                if remaining <= 0:
                    break
        except OSError as err:
            raise InputError(f"cannot read {what} {p}: {err.strerror or err}") from None
    data = b"".join(chunks)
    if len(data) > limit:
        raise InputError(f"{what} {p} grew past the limit of {limit} bytes while being read")
    return data


def _text(data: bytes | str, what: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{what} is not UTF-8 text (invalid byte at offset {err.start})") from None


def load_yaml(
    path: str | Path,
    *,
    what: str = "YAML file",
    max_bytes: int = MAX_YAML_BYTES,
    max_depth: int = MAX_NESTING_DEPTH,
) -> tuple[Any, bytes]:
    """Read and parse a YAML file within the limits (see ``parse_yaml``).

    Args:
        path: the file.
        what: what the file is, for messages.
        max_bytes: size limit.
        max_depth: nesting limit.

    Returns:
        ``(data, raw)``: the plain data (dicts, lists, scalars) and the exact bytes parsed, so callers
        can hash what they used.

    Raises:
        InputError: as ``read_regular_file``; not UTF-8; nesting, aliases or expansion over the limits.
        ConfigError: not valid YAML, or a tag the safe loader refuses.
    """
    raw = read_regular_file(path, limit=max_bytes, what=what)
    return parse_yaml(raw, what=f"{what} {path}", max_depth=max_depth), raw


def parse_yaml(data: bytes | str, *, what: str = "YAML", max_depth: int = MAX_NESTING_DEPTH) -> Any:
    """Parse one YAML document into plain data, refusing alias bombs and deep nesting first.

    Args:
        data: the document (bytes are decoded as UTF-8).
        what: names the input in messages (``"pipeline file p.yaml"``).
        max_depth: nesting limit.

    Returns:
        Dicts, lists and scalars (``None`` for an empty document).

    Raises:
        InputError: not UTF-8; nesting, aliases or alias expansion over the limits.
        ConfigError: not valid YAML, or a tag the safe loader refuses.
    """
    import yaml

    text = _text(data, what)
    loader = _plain_loader()
    try:
        _check_yaml_events(yaml.parse(text, Loader=loader), what, max_depth)
        return yaml.load(text, Loader=loader)  # a safe loader (CSafeLoader/SafeLoader): plain data only
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if "nesting depth" in problem:  # libyaml's own limit (1,000) on flow collections, met first
            raise InputError(f"{what} nests deeper than {max_depth} levels; flatten it") from None
        raise ConfigError(f"{what} is not valid YAML{at}: {problem}") from None
    except RecursionError:  # pragma: no cover - the depth check runs first; kept as a last line
        raise InputError(f"{what} nests too deeply") from None


_REFUSED_TAGS = ("binary", "set", "omap", "pairs", "timestamp")
"""YAML types outside the JSON data model (bytes, sets, ordered pairs, dates): refused, so what a file
holds can be stored, hashed and compared as JSON everywhere downstream."""


def _refuse_tag(loader: Any, node: Any) -> Any:
    import yaml

    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"the tag {node.tag} is not allowed here; use strings, numbers, booleans, lists and mappings",
        node.start_mark,
    )


_LOADER: Any = None


def _plain_loader() -> Any:
    """The safe loader (libyaml's when present), limited to JSON's data model.

    Dates are left as strings (``2024-01-01`` stays text, not a ``date``); ``!!binary``, ``!!set``,
    ``!!omap``, ``!!pairs`` and ``!!timestamp`` are refused.
    """
    global _LOADER
    if _LOADER is None:
        import yaml

        base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        loader: Any = type("PlainSafeLoader", (base,), {})
        loader.yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if not tag.endswith(":timestamp")]
            for first, resolvers in base.yaml_implicit_resolvers.items()
        }
        for name in _REFUSED_TAGS:
            loader.add_constructor(f"tag:yaml.org,2002:{name}", _refuse_tag)
        _LOADER = loader
    return _LOADER


def _check_yaml_events(events: Any, what: str, max_depth: int) -> None:
    """Walk the parser's events once; refuse deep nesting, many aliases and large alias expansion.

    Each open collection is a frame ``[anchor, expanded size]``; a finished node adds its expanded size
    to its parent, and an anchored node remembers its size, so ``*name`` costs exactly what walking the
    loaded data would cost. An alias to an anchor still open is a recursive structure: refused.
    """
    import yaml

    frames: list[list[Any]] = []
    sizes: dict[str, int] = {}
    open_anchors: set[str] = set()
    aliases = 0
    added = 0

    def close(anchor: str | None, size: int) -> None:
        if anchor is not None:
            sizes[anchor] = size
            open_anchors.discard(anchor)
        if frames:
            frames[-1][1] += size

    for event in events:
        if isinstance(event, yaml.ScalarEvent):
            close(event.anchor, 1)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if len(frames) >= max_depth:
                raise InputError(f"{what} nests deeper than {max_depth} levels; flatten it")
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            frames.append([event.anchor, 1])
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            anchor, size = frames.pop()
            close(anchor, size)
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise InputError(f"{what} uses more than {MAX_YAML_ALIASES} aliases (*name); write it out")
            if event.anchor in open_anchors:
                raise InputError(f"{what} has a recursive alias *{event.anchor}; refusing a cyclic document")
            size = sizes.get(
                event.anchor or "", 1
            )  # an unknown anchor is the composer's error, reported next
            added += size
            if added > MAX_YAML_ALIAS_NODES:
                raise InputError(
                    f"{what}: its aliases expand to more than {MAX_YAML_ALIAS_NODES} nodes"
                    " (an alias bomb?); write the repeated parts out"
                )
            close(None, size)


def load_json(
    path: str | Path,
    *,
    what: str = "JSON file",
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_NESTING_DEPTH,
) -> Any:
    """Read and parse a JSON file within the limits (see ``parse_json``).

    Raises:
        InputError: as ``read_regular_file`` and ``parse_json``.
    """
    raw = read_regular_file(path, limit=max_bytes, what=what)
    return parse_json(raw, what=f"{what} {path}", max_depth=max_depth)


_JSON_TOKEN = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def parse_json(data: bytes | str, *, what: str = "JSON", max_depth: int = MAX_NESTING_DEPTH) -> Any:
    """Parse a JSON document, refusing nesting deeper than ``max_depth`` before decoding it.

    Args:
        data: the document (bytes are decoded as UTF-8).
        what: names the input in messages.
        max_depth: nesting limit.

    Raises:
        InputError: not UTF-8, nested too deeply, or not valid JSON.
    """
    text = _text(data, what)
    depth, in_string = 0, False
    # One left-to-right pass over the only characters that matter (escapes, quotes, brackets), so it is
    # linear in the text; brackets inside strings do not nest. Stops as soon as the limit is passed.
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token == '"':
            in_string = not in_string
        elif in_string or len(token) == 2:
            continue
        elif token in "[{":
            depth += 1
            if depth > max_depth:
                raise InputError(f"{what} nests deeper than {max_depth} levels; refusing it")
        else:
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{what} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None
    except RecursionError:  # pragma: no cover - the depth check runs first; kept as a last line
        raise InputError(f"{what} nests too deeply") from None
