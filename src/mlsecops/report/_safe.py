"""Untrusted text made safe for the terminal and for UTF-8 files (standard library only).

File names, CSV headers, finding titles and audit details come from whoever made the input. Two
classes of defect follow from printing them as they are:

- terminal injection: ESC / CSI / OSC sequences (clear the screen, rewrite the clipboard with OSC 52,
  forge earlier lines), C0 and C1 control characters, and bidirectional overrides that make a name read
  differently from its bytes (Trojan Source). ``visible`` turns every such code point into a visible
  backslash escape (``\\x1b``, ``\\u202e``), so what reaches the terminal is text, never a command;
- names that are not UTF-8: Python carries their bytes as lone surrogates (``surrogateescape``), which
  no UTF-8 encoder accepts. ``visible`` shows such a byte as ``\\xff``; ``json_dumps`` keeps JSON valid
  UTF-8 by writing it as the text ``\\xff`` and writes control and bidi code points as ``\\uXXXX``
  escapes (lossless: a JSON reader gets the original characters back).

Plain UTF-8 text (``é``, ``中文``, emoji) passes through unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["escape_surrogates", "json_dumps", "visible"]

# Bidirectional controls: the embeddings, overrides and isolates of Trojan Source, the marks, and the
# Arabic letter mark; plus the Unicode line and paragraph separators, which break lines like a newline.
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
# Everything ``visible`` escapes: C0 controls, DEL, C1 controls, bidi controls, lone surrogates.
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}\ud800-\udfff]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}\ud800-\udfff]")
# What ``json_dumps`` escapes after ``json.dumps`` (which already escapes C0 controls itself).
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, carried by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control, bidi and undecodable code point shown as a backslash escape.

    Args:
        text: untrusted text (a file name, a column header, a finding title).
        keep_newlines: leave line feeds and tabs as they are (multi-line cells, tracebacks); otherwise
            they are escaped too, so the text stays on one line.
    """
    pattern = _UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE
    return pattern.sub(lambda m: _escape(m.group()), text)


def escape_surrogates(text: str) -> str:
    """``text`` with only the undecodable bytes (lone surrogates) written as ``\\xNN``, so it encodes."""
    return _SURROGATE.sub(lambda m: _escape(m.group()), text)


def json_dumps(value: Any, *, indent: int | None = 2, allow_nan: bool = False) -> str:
    """JSON text that is valid UTF-8 and safe to print: non-UTF-8 bytes become the text ``\\xNN``,
    C1, bidi and separator code points become ``\\uXXXX`` escapes; everything else stays readable.

    Raises:
        ValueError: NaN or infinity with ``allow_nan=False``.
    """
    text = json.dumps(value, indent=indent, ensure_ascii=False, allow_nan=allow_nan)
    # a lone surrogate becomes the JSON string text "\xNN" (an escaped backslash, then xNN)
    text = _SURROGATE.sub(lambda m: "\\" + _escape(m.group()), text)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
