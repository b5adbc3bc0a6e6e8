"""Encoded payloads: strings and bytes that decode to a pickle or to Python code.

A pickle can carry its real payload as data: base64 or hex text, base85, a zlib/gzip/bz2/xz stream, or
a pickle inside a pickle, to be decoded by whatever receives it. ``decode_layers`` peels such layers off
a candidate, bounded at every step: candidates longer than ``MAX_INPUT`` are not decoded, each layer
yields at most ``MAX_OUTPUT`` bytes (a decompression bomb stops there, having done bounded work),
``MAX_LAYERS`` layers deep at most, and ``MAX_TOTAL`` decoded bytes per pickle. What the layers hold is
then judged by the caller: a pickle is walked as a nested artifact, text is parsed with ``ast`` (never
compiled or run) and ``dangerous_calls`` lists the calls, imports and names in it that run code, touch
the file system, the network or other processes.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import lzma
import re
import zlib
from collections.abc import Callable, Iterator

__all__ = [
    "MAX_INPUT",
    "MAX_LAYERS",
    "MAX_OUTPUT",
    "MAX_TOTAL",
    "MIN_ENCODED",
    "MIN_INPUT",
    "dangerous_calls",
    "decode_layers",
    "is_candidate",
    "looks_like_pickle",
]

MIN_INPUT = 16
"""Shorter strings and bytes are not looked at (``cos\\nsystem\\n(Vx\\ntR.`` is 18 bytes)."""
MIN_ENCODED = 24
"""Shorter strings are not decoded as text encodings (names, keys, dtype strings; no payload fits)."""
MAX_INPUT = 8 << 20
"""Bytes of a candidate decoded, from its start (bounds the work per string; a pickle or a
compressed stream is read from the front, so a payload cannot hide behind padding)."""
MAX_OUTPUT = 16 << 20
"""Most bytes one layer may decode to (a decompression bomb stops here)."""
MAX_LAYERS = 4
"""Deepest chain of encodings followed (base64 of zlib of hex of ...)."""
MAX_TOTAL = 64 << 20
"""Decoded bytes per pickle over all candidates (bounds the work on a pickle of many strings)."""
MAX_CODE = 1 << 20
"""Longest text parsed as Python."""

_B64 = re.compile(rb"[A-Za-z0-9+/\-_]+={0,2}")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
_NON_B64_BYTES = bytes(b for b in range(256) if b not in _B64_ALPHABET)
"""Bytes ``b64decode(validate=False)`` drops (``bytes.translate`` deletes them at C speed)."""
_WS_BYTES = b" \t\n\r\x0b\x0c"
B64_JUNK = 8
"""Text with at most 1 character in this many outside the base64 alphabet is decoded as base64 with
those characters dropped, as ``base64.b64decode`` does by default (``validate=False``)."""
_B64_MAGIC = re.compile(rb"gA[I-X]|e[JNAF]|H4sI|Qlpo|/Td6WFo")
"""How base64 of a pickle header (``\\x80\\x02``-``\\x05``), a zlib, gzip, bz2 or xz stream begins."""
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
_HEX_CHARS = re.compile(rb"[0-9a-fA-F]+")
_ANY_ALPHABET = re.compile(rb"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~/]+")
_B85 = re.compile(rb"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]+")
_CODE_HINT = re.compile(
    rb"import|exec|eval|system|popen|subprocess|socket|__\w+__|open\s*\(|compile|getattr|urlopen|spawn|requests|urllib|shutil"
)
_PICKLE_P0 = re.compile(rb"^(?:\(|c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n)")

# Names whose call (or import) in decoded text is reported: code execution, import, introspection,
# processes, file system, network, nested loading.
_DANGEROUS_CALLS = frozenset(
    {
        "eval", "exec", "compile", "__import__", "import_module", "getattr", "setattr", "globals", "open",
        "system", "popen", "Popen", "spawnl", "spawnv", "spawnve", "execv", "execve", "execl", "fork",
        "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput", "startfile",
        "socket", "create_connection", "connect", "urlopen", "urlretrieve", "request", "get", "post",
        "remove", "unlink", "rmtree", "rmdir", "chmod", "chown", "kill", "loads", "load", "b64decode",
        "decompress", "CDLL", "dlopen", "ptrace", "write_text", "write_bytes",
    }
)  # fmt: skip
_DANGEROUS_MODULES = frozenset(
    {
        "os", "sys", "subprocess", "socket", "ctypes", "pty", "shutil", "pickle", "marshal", "importlib",
        "urllib", "requests", "http", "builtins", "runpy", "multiprocessing", "base64", "zlib", "codecs",
    }
)  # fmt: skip


_MAGIC_FIRST = frozenset(b"\x80c(\x1fB\xfdx")
"""First bytes of a pickle (PROTO, GLOBAL, MARK) or a gzip, bz2, xz or zlib stream."""


def is_candidate(data: bytes) -> bool:
    """Whether ``data`` may hold an encoded payload (a cheap test on its first bytes)."""
    if len(data) < MIN_INPUT:
        return False
    head = data[:64]
    if head[0] in _MAGIC_FIRST and (looks_like_pickle(head) or _compression(head) is not None):
        return True
    if len(data) < MIN_ENCODED:
        return False
    if not head.isascii():  # compressed data kept in a str: its UTF-8 bytes, latin-1 decoded
        alt = head.decode("utf-8", "ignore").encode("latin-1", "ignore")
        return looks_like_pickle(alt) or _compression(alt) is not None
    if (b"(" in data and _CODE_HINT.search(data, 0, MAX_CODE)) or _B64_MAGIC.match(
        head.translate(None, _NON_B64_BYTES)
    ):
        return True
    if b" " in head:  # prose: no strict encoding has spaces (base64 with junk was tested just above)
        return False
    stripped = head.translate(None, _WS_BYTES)
    if not _ANY_ALPHABET.fullmatch(stripped):  # one test for the three alphabets (names with dots fail)
        return False
    return bool(_B64.fullmatch(stripped) or _HEX.fullmatch(stripped) or _B85.fullmatch(stripped))


def looks_like_pickle(data: bytes) -> bool:
    """A pickle header: ``PROTO 2..5``, or a protocol 0/1 pickle starting with MARK or GLOBAL."""
    if data[:1] == b"\x80":
        return len(data) > 1 and 2 <= data[1] <= 5
    return bool(_PICKLE_P0.match(data))


def _compression(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    return None


def _inflate(kind: str, data: bytes) -> bytes | None:
    """Decompress at most ``MAX_OUTPUT`` bytes (a bomb stops there)."""
    try:
        if kind in ("zlib", "gzip"):
            return zlib.decompressobj(31 if kind == "gzip" else 15).decompress(data, MAX_OUTPUT)
        if kind == "bz2":
            return bz2.BZ2Decompressor().decompress(data, MAX_OUTPUT)
        return lzma.LZMADecompressor().decompress(data, MAX_OUTPUT)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return None


def _text_decodings(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Text encodings of ``data`` that decode to something worth a look: base64, hex, base85, ascii85.

    Each is first tried on a short prefix (``_PROBE`` characters); only an encoding whose prefix decodes
    to the start of a pickle, of a compressed stream, or to ASCII text is decoded whole. Names and prose
    that happen to fit an alphabet decode to noise and cost one short decode.
    """
    stripped = data.translate(None, _WS_BYTES)
    if len(stripped) < MIN_ENCODED:
        return
    tries: list[tuple[str, Callable[[bytes], bytes | None], bytes]] = []
    if _HEX_CHARS.fullmatch(stripped):
        tries.append(("hex", _hex, stripped))
    if _B64.fullmatch(stripped):
        tries.append(("base64", _b64, stripped.rstrip(b"=")))
    else:
        kept = _mostly_b64(stripped)
        if kept is not None:
            tries.append(("base64 (other characters dropped)", _b64, kept))
    if stripped.startswith(b"<~") and stripped.endswith(b"~>"):
        tries.append(("ascii85", lambda t: _try(lambda: base64.a85decode(t, adobe=True)), stripped))
    elif _B85.fullmatch(stripped):
        tries.append(("base85", lambda t: _try(lambda: base64.b85decode(t)), stripped))
    for name, decode, text in tries:
        if len(text) > _PROBE and name != "ascii85":
            head = decode(text[:_PROBE])
            if head is None or not _promising(head):
                continue
        out = decode(text)
        if out is not None and _promising(out[:_PROBE]):
            yield name, out


_PROBE = 80
"""Characters decoded first to see whether an encoding is worth decoding whole (a multiple of 4 and 5)."""


def _promising(head: bytes) -> bool:
    """Decoded bytes that start a pickle or a compressed stream, or are text (code, another encoding)."""
    return looks_like_pickle(head) or _compression(head) is not None or (len(head) >= 8 and head.isascii())


def _hex(text: bytes) -> bytes | None:
    even = text[: len(text) & ~1]  # a prefix cut at MAX_INPUT may end mid-byte
    return _try(lambda: bytes.fromhex(even.decode()))


def _mostly_b64(text: bytes) -> bytes | None:
    """The base64 alphabet characters of ``text`` when the others are few (see ``B64_JUNK``) and what is
    left starts like an encoded pickle or compressed stream (``_B64_MAGIC``).
    """
    kept = text.translate(None, _NON_B64_BYTES)
    if (
        len(kept) < MIN_ENCODED
        or (len(text) - len(kept)) * B64_JUNK > len(text)
        or not _B64_MAGIC.match(kept)
    ):
        return None
    return kept


def _b64(body: bytes) -> bytes | None:
    """Decode base64 without padding (standard or URL-safe alphabet; a cut-off tail is dropped)."""
    alt = b"-_" if (b"-" in body or b"_" in body) else None
    padded = body[: len(body) - (len(body) % 4 == 1)] + b"=" * (-len(body) % 4)
    return _try(lambda: base64.b64decode(padded, altchars=alt, validate=True))


def _try(decode: Callable[[], bytes]) -> bytes | None:
    try:
        return decode()
    except (binascii.Error, ValueError):
        return None


def decode_layers(data: bytes, budget: list[int]) -> Iterator[tuple[str, bytes]]:
    """Every payload reachable from ``data`` by decoding, with its chain (``"base64 > zlib"``).

    Args:
        data: the candidate (at most ``MAX_INPUT`` bytes are considered).
        budget: ``[bytes left]`` of ``MAX_TOTAL``, shared by the caller over a pickle; decreased here.

    Yields:
        ``(chain, payload)`` for each layer decoded, outermost first.
    """
    todo: list[tuple[str, bytes, int]] = [("", data, 0)]
    while todo:
        chain, cur, depth = todo.pop()
        if depth >= MAX_LAYERS or len(cur) < MIN_INPUT:
            continue
        cur = cur[:MAX_INPUT]  # a payload a loader decodes starts at the front: its prefix is enough
        kind = _compression(cur[:8])
        outs: list[tuple[str, bytes]] = []
        if kind is not None:
            out = _inflate(kind, cur)
            if out:
                outs.append((kind, out))
        else:
            outs.extend(_text_decodings(cur))
        for name, out in outs:
            if budget[0] <= 0:
                return
            budget[0] -= len(out)
            step = f"{chain} > {name}" if chain else name
            yield step, out
            if not looks_like_pickle(out[:256]):
                todo.append((step, out, depth + 1))


def dangerous_calls(text: bytes) -> list[str]:
    """The dangerous calls and imports of ``text`` when it parses as Python (never compiled or run).

    Returns:
        Names such as ``os.system`` or ``import subprocess``; empty when the text is not Python or holds
        nothing dangerous.
    """
    if len(text) > MAX_CODE or b"(" not in text or not _CODE_HINT.search(text):
        return []
    try:
        tree = ast.parse(text.decode("utf-8"), mode="exec")
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name and _is_dangerous(name):
                found.append(name)
        elif isinstance(node, ast.Import):
            found.extend(f"import {a.name}" for a in node.names if a.name.split(".")[0] in _DANGEROUS_MODULES)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _DANGEROUS_MODULES:
            found.append(f"from {node.module} import ...")
        if len(found) >= 8:
            break
    # An import alone (``import os`` in a snippet) is not a payload; a call that runs something is.
    return found if any(not f.startswith(("import ", "from ")) for f in found) else []


_HARD = frozenset({"eval", "exec", "system", "popen", "Popen", "__import__", "check_output", "urlopen"})
"""Calls that run code, a process or a download whatever object they hang off (``x.system``)."""
_BARE = frozenset({"eval", "exec", "compile", "__import__", "breakpoint"})
"""Builtins that run code when called by their bare name (``open`` or ``load`` alone are not reported)."""


def _is_dangerous(name: str) -> bool:
    """A call by dotted name that runs code, a process, or touches files or the network."""
    parts = name.split(".")
    last = parts[-1]
    if len(parts) == 1:
        return last in _BARE
    return last in _HARD or (parts[0] in _DANGEROUS_MODULES and last in _DANGEROUS_CALLS)


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call):  # __import__("os").system(...)
        inner = _dotted(node.func)
        parts.append(f"{inner}()" if inner else "<call>")
        return ".".join(reversed(parts))
    return None
