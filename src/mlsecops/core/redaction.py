"""Redaction of credentials in URLs and in text that may hold URLs: one function, ``redact``.

Every value that may carry a secret (a database URL, a webhook or model-endpoint URL, an error message
that quotes one) goes through ``redact`` before it is printed, logged or stored (audit details are
permanent). What is hidden, replaced by ``***``:

- the password of a URL's user information (``user:***@host``), and the user name too when it looks
  like a token (``https://***@host``: GitHub-style tokens travel as user names);
- the value of every query or fragment parameter whose name, once percent-decoded (repeatedly, so
  ``%2570assword`` counts), contains ``pass``, ``pwd``, ``token``, ``secret``, ``key``, ``sig``,
  ``auth``, ``cred``, ``session``, ``cookie`` or ``jwt`` (``password``, ``sslpassword``, ``api_key``,
  ``X-Amz-Signature``, ``access_token``...), and of any parameter whose value looks like a token or
  whose decoded value holds such a ``name=value`` pair itself;
- path segments that look like tokens (long runs of token characters; 32+ hex digits, dashes allowed),
  and every segment after one that names a secret holder (``services``, ``hooks``, ``webhooks``,
  ``token``...): ``hooks.slack.com/services/***/***/***``;
- in free text: URLs as above, ``name=value`` pairs whose name is sensitive (libpq DSNs, ``key=...``),
  and ``Bearer``/``Basic`` credentials.

It errs towards hiding too much: a long single-word path segment is hidden although it may be a plain
name. Host, port, scheme and the shape of the URL stay, so messages still say where.

>>> redact("postgresql+psycopg://app:hunter2@db:5432/ml?sslmode=require&password=hunter3")
'postgresql+psycopg://app:***@db:5432/ml?sslmode=require&password=***'
>>> redact("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX")
'https://hooks.slack.com/services/***/***/***'
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["REDACTED", "redact"]

REDACTED = "***"
"""What a hidden secret is replaced with."""

_SENSITIVE_PARTS = (
    "pass",
    "pwd",
    "token",
    "secret",
    "key",
    "sig",
    "auth",
    "cred",
    "session",
    "cookie",
    "jwt",
)
"""A parameter whose (decoded, lower-cased) name contains one of these holds a secret."""

_HOLDER_SEGMENTS = frozenset(
    {
        "services",
        "hook",
        "hooks",
        "webhook",
        "webhooks",
        "token",
        "tokens",
        "key",
        "keys",
        "secret",
        "secrets",
        "sig",
        "signature",
        "auth",
        "trigger",
        "triggers",
    }
)
"""Path segments after which every later segment is an identifier or a secret (Slack, Discord, IFTTT)."""

MIN_TOKEN_LENGTH = 16
"""Shorter strings are not judged token-like by shape (Slack's 9-11 character team ids stay)."""

_MAX_DECODE_ROUNDS = 4
"""Percent-decoding rounds when judging a name; bounds the work on hostile, deeply encoded input."""

_MAX_NESTING = 3
"""URLs nested in parameter values are judged this deep; a deeper value is hidden whole."""

_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-.~+/=%]+")
_HEXISH = re.compile(r"(?:[0-9a-fA-F]-?){32,}")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_URL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_PAIR_IN_TEXT = re.compile(  # anchored at word starts and judged in code: linear on long words
    r"(?<![\w.\-%])(?P<name>[\w.\-%]+)(?P<sep>\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,'\"]+)"
)
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(?P<scheme>bearer|basic|token)(?P<sep>\s+)(?P<value>[^\s,;'\"]{6,})")


def _decoded(text: str) -> str:
    for _ in range(_MAX_DECODE_ROUNDS):
        nxt = urllib.parse.unquote_plus(text)
        if nxt == text:
            break
        text = nxt
    return text


def _sensitive_name(name: str) -> bool:
    low = _decoded(name).lower()
    return any(part in low for part in _SENSITIVE_PARTS)


def _looks_like_token(value: str) -> bool:
    """A long run of token characters: mixed classes, no word separators, or 32+ hex digits."""
    value = _decoded(value)
    if len(value) < MIN_TOKEN_LENGTH or _TOKEN_CHARS.fullmatch(value) is None:
        return False
    if _HEXISH.fullmatch(value):
        return True
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
        )
    )
    separators = sum(value.count(c) for c in "-._/~")
    return classes >= 3 or separators == 0


def _redact_params(params: str, depth: int) -> str:
    out = []
    for piece in re.split(r"([&;])", params):
        if piece in ("&", ";") or not piece:
            out.append(piece)
            continue
        name, eq, value = piece.partition("=")
        if not eq:
            out.append(REDACTED if _looks_like_token(name) else name)
            continue
        decoded = _decoded(value)
        secret = (
            _sensitive_name(name)
            or _looks_like_token(value)
            or depth >= _MAX_NESTING  # too deep to judge: hide it
            or _redact_text(decoded, depth + 1) != decoded  # a nested URL or pair with a secret
        )
        out.append(f"{name}={REDACTED}" if secret and value else piece)
    return "".join(out)


def _redact_path(path: str) -> str:
    segments = path.split("/")
    hide_rest = False
    for i, seg in enumerate(segments):
        if not seg:
            continue
        if hide_rest or _looks_like_token(seg):
            segments[i] = REDACTED
        elif _decoded(seg).lower() in _HOLDER_SEGMENTS:
            hide_rest = True
    return "/".join(segments)


def _redact_url(url: str, depth: int = 0) -> str:
    match = _SCHEME.match(url)
    if match is None:
        return url
    scheme, rest = match.group(0), url[match.end() :]
    userinfo = ""
    # User information ends at the last "@" before any query or fragment, so a password holding a raw
    # "@" or "/" is hidden whole (over-hiding a path with "@" in it is the safe side).
    authority_end = len(rest)
    for mark in "?#":
        if mark in rest:
            authority_end = min(authority_end, rest.index(mark))
    at = rest.rfind("@", 0, authority_end)
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        shown = REDACTED if _looks_like_token(user) or "/" in user else user
        userinfo = f"{shown}:{REDACTED}@" if colon else f"{shown}@"
        rest = rest[at + 1 :]
    rest, hash_mark, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    host, slash, path = rest.partition("/")
    if not scheme.lower().startswith("sqlite"):  # a SQLite "path" is a file name, not a secret holder
        path = _redact_path(path)
    query = _redact_params(query, depth) if question else ""
    fragment = _redact_params(fragment, depth) if hash_mark else ""
    return f"{scheme}{userinfo}{host}{slash}{path}{question}{query}{hash_mark}{fragment}"


def _redact_text(text: str, depth: int = 0) -> str:
    text = _URL_IN_TEXT.sub(lambda m: _redact_url(m.group(0), depth), text)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group('scheme')}{m.group('sep')}{REDACTED}", text)

    def _pair(m: re.Match[str]) -> str:
        if m.group("value") == REDACTED or not _sensitive_name(m.group("name")):
            return m.group(0)
        return f"{m.group('name')}{m.group('sep')}{REDACTED}"

    return _PAIR_IN_TEXT.sub(_pair, text)


def redact(value: str) -> str:
    """``value`` with every credential it carries replaced by ``***`` (see the module docstring).

    A value that is one URL (it starts with ``scheme://`` and has no line break) is redacted as a whole,
    so a password with spaces or slashes in it is still found; any other text has each URL in it,
    each sensitive ``name=value`` pair and each ``Bearer``/``Basic`` credential redacted.

    Args:
        value: a URL, or text such as an error message.

    Returns:
        The same text with secrets replaced; unchanged when it holds none.
    """
    stripped = value.strip()
    if _SCHEME.match(stripped) and "\n" not in stripped and "\r" not in stripped:
        return _redact_text(_redact_url(stripped))
    return _redact_text(value)
