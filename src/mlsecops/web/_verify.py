"""The audit chain's verification status, computed off the request path and cached by head position.

Walking 100,000 events takes a second or more, far beyond a page load. ``ChainVerifier.status()``
reads the head position (one row), answers from the cache when the last verification covered that
position, and otherwise starts one verification in a background thread and answers ``verifying``
(with the previous result, if any). Pages poll ``/api/audit/verify`` from a small script until the
answer is final. At most one verification runs at a time, in a child process (hashing holds the
GIL; a thread would slow every page served meanwhile).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mlsecops.core.errors import MlsecopsError
from mlsecops.store import Workspace, audit
from mlsecops.store.models import AuditEvent, AuditHead

__all__ = ["VERIFY_TIMEOUT_S", "ChainVerifier", "VerifyResult", "child_main", "head_seq", "verify_workspace"]

VERIFY_TIMEOUT_S = 3600.0
"""Longest one verification may run (tens of millions of events); then it is reported as not run."""


def head_seq(ws: Workspace) -> int:
    """The newest event's position (0 when there is no head row)."""
    with ws.session(readonly=True) as s:
        found = s.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar_one_or_none()
    return int(found) if isinstance(found, int) else 0


SESSION_ACTIONS = "ui."
"""Prefix of the dashboard's own session events (log-in, log-out, refusals): they change nothing a
page shows, so they do not invalidate the caches keyed by ``state_seq``."""


def state_seq(ws: Workspace) -> int:
    """The newest event that can change what a page shows: the newest one not a dashboard session event.

    Reads backwards from the head by the primary key and stops at the first match, so it costs a few
    rows however long the trail is.
    """
    with ws.session(readonly=True) as s:
        found = s.execute(
            select(AuditEvent.seq)
            .where(~AuditEvent.action.startswith(SESSION_ACTIONS, autoescape=True))
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).scalar_one_or_none()
    return int(found) if isinstance(found, int) else 0


@dataclass(frozen=True)
class VerifyResult:
    """One finished verification."""

    head: int
    """The head position when it started."""
    ok: bool
    events: int
    bad_seq: int | None
    reason: str
    seconds: float
    finished: float
    """``time.time()`` when it finished."""


class ChainVerifier:
    """Runs ``store.audit.verify`` in a background thread and caches the result by head position."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._result: VerifyResult | None = None
        self._running: int | None = None
        """Head position a running verification started at."""

    def status(self) -> dict[str, Any]:
        """``{"state": "verified"|"failed"|"verifying", "head": N, ...}`` (starts a run when needed)."""
        head = head_seq(self._ws)
        with self._lock:
            result = self._result
            fresh = result is not None and result.head == head
            if not fresh and self._running is None:
                self._running = head
                threading.Thread(target=self._run, args=(head,), name="ui-audit-verify", daemon=True).start()
        if result is not None and fresh:
            return self._doc(result, head)
        out: dict[str, Any] = {"state": "verifying", "head": head}
        if result is not None:
            out["previous"] = self._doc(result, result.head)
        return out

    def wait(self, timeout: float = 60.0) -> dict[str, Any]:
        """Poll until the status is final (for tests and the JSON API's ``?wait=1``)."""
        deadline = time.monotonic() + timeout
        doc = self.status()
        while doc["state"] == "verifying" and time.monotonic() < deadline:
            time.sleep(0.05)
            doc = self.status()
        return doc

    @staticmethod
    def _doc(r: VerifyResult, head: int) -> dict[str, Any]:
        return {
            "state": "verified" if r.ok else "failed",
            "head": head,
            "events": r.events,
            "bad_seq": r.bad_seq,
            "reason": r.reason,
            "seconds": round(r.seconds, 3),
            "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.finished)),
        }

    def _run(self, head: int) -> None:
        start = time.perf_counter()
        try:
            ok, events, bad_seq, reason = self._verify()
            result = VerifyResult(head, ok, events, bad_seq, reason, time.perf_counter() - start, time.time())
        except Exception as err:  # could not run: shown as not verified, never as verified
            reason = f"verification could not run: {type(err).__name__}"
            result = VerifyResult(head, False, 0, None, reason, time.perf_counter() - start, time.time())
        with self._lock:
            self._result = result
            self._running = None

    def _verify(self) -> tuple[bool, int, int | None, str]:
        """Walk the chain in a child process: hashing 100,000 events holds the GIL for seconds, which
        would stall every page served meanwhile. Falls back to this process if no child can start.

        The database URL (which may hold a password) goes to the child on stdin, never in its argv.
        """
        request = json.dumps({"home": str(self._ws.home), "url": self._ws.url})
        try:
            done = subprocess.run(
                [sys.executable, "-c", "from mlsecops.web._verify import child_main; child_main()"],
                input=request,
                capture_output=True,
                text=True,
                timeout=VERIFY_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return verify_workspace(str(self._ws.home), None, ws=self._ws)
        try:
            ok, events, bad_seq, reason = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError, TypeError):
            return False, 0, None, f"verification could not run (exit {done.returncode})"
        return bool(ok), int(events), bad_seq if isinstance(bad_seq, int) else None, str(reason)


def verify_workspace(
    home: str, url: str | None, *, ws: Workspace | None = None
) -> tuple[bool, int, int | None, str]:
    """``store.audit.verify`` of a workspace as ``(ok, events, bad_seq, reason)`` (run in a child)."""
    opened = ws if ws is not None else Workspace.open(Path(home), url)
    try:
        with opened.session(readonly=True) as s:
            chain = audit.verify(s)
        return chain.ok, chain.events, chain.bad_seq, chain.reason
    except MlsecopsError as err:  # e.g. the audit key file is missing: cannot vouch for the chain
        return False, 0, None, str(err)
    finally:
        if ws is None:
            opened.close()


def child_main() -> None:
    """The child of ``ChainVerifier._verify``: ``{"home", "url"}`` on stdin, one JSON line out."""
    args = json.loads(sys.stdin.read())
    print(json.dumps(verify_workspace(args["home"], args["url"])))
