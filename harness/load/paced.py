"""A counted window sent one request at a time, each once the server is blocked.

wrk on one connection sends the next request as soon as an answer arrives; where that request
finds the server (finishing the last one, or blocked in its poll) depends on how fast the
machine is, and so does the number of event-loop turns per request. Counted by instructions,
a server that shared its core with a CPU hog took 0.25% more per request (raw-asgi under
callgrind, bench/instructions_hog.py). Paced, every request wakes a blocked server: the same
path through the server on any machine, and the hog's 0.25% gone (issue 33).

What is counted is then the cost of a request that arrives at an idle server: one connection,
kept alive (reopened when the server closes it, as gunicorn's sync worker does), the window's
last answer and the connection's close handled before the window ends.

A server that is never blocked (a thread of its own that keeps running) is not waited for more
than IDLE_BOUND_S per request; after BUSY_LIMIT such requests the rest are sent back to back,
and the result says how many were (`extra["sent_busy"]`).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from harness.load.request import Request
from harness.load.wrk_output import WrkResult
from harness.machine.quiet import Watch, wait_until_blocked

IDLE_BOUND_S = 1.0  # a request's wait for the server to block: 400 times a Starlette request
BUSY_LIMIT = 3
ANSWER_TIMEOUT_S = 60.0  # one answer, under callgrind, of an app that does 1 ms of work


class PacedError(Exception):
    """The window could not be sent to its end; the message says how far it got."""


class _Window:
    """One connection and the count of what it was answered."""

    def __init__(self, url: str, request: Request, serving: Sequence[int]) -> None:
        parts = urlsplit(url)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.request, self.watch = request, Watch(serving)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=ANSWER_TIMEOUT_S
        )
        self.answered = self.non2xx3xx = self.sent_busy = 0

    def settle(self, deadline: float) -> None:
        """Until the server is blocked: at most IDLE_BOUND_S, not at all once it has been busy
        BUSY_LIMIT times."""
        if self.sent_busy >= BUSY_LIMIT:
            return
        bound = min(IDLE_BOUND_S, max(0.0, deadline - time.monotonic()))
        if not wait_until_blocked(self.watch, bound_s=bound):
            self.sent_busy += 1

    def exchange(self) -> None:
        request = self.request
        headers = dict(request.headers)
        self.connection.request(request.method, self.target, body=request.body, headers=headers)
        answer = self.connection.getresponse()
        answer.read()  # all of it, or the next request on the connection cannot be sent
        self.answered += 1
        self.non2xx3xx += not 200 <= answer.status < 400  # as wrk counts them


def run_paced(
    url: str, *, count: int, request: Request, serving: Sequence[int], bound: float
) -> WrkResult:
    """`count` requests to `url`, each once every thread of `serving` is blocked; `bound`
    seconds at most. A failed result when the count is not answered within the bound, or the
    connection fails (the reason says how many were)."""
    if not serving:
        raise PacedError("a paced window needs the processes that serve the URL")
    window = _Window(url, request, serving)
    started = time.monotonic()
    deadline = started + bound
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                said = f"{window.answered} of {count} requests answered within {bound:g}s"
                raise PacedError(said)
            window.settle(deadline)
            window.exchange()
        window.connection.close()
        window.settle(deadline)  # the last answer's tail and the close, inside the window
    except (OSError, http.client.HTTPException, PacedError) as exc:
        reason = str(exc) or type(exc).__name__
        if not isinstance(exc, PacedError):
            reason = f"{window.answered} of {count} requests answered, then: {reason}"
        return _result(url, window, time.monotonic() - started, status="failed", reason=reason)
    finally:
        window.connection.close()
        window.watch.close()
    return _result(url, window, time.monotonic() - started)


def _result(
    url: str, window: _Window, elapsed: float, *, status: str = "ok", reason: str = ""
) -> WrkResult:
    return WrkResult(
        command=["paced", url],
        url=url,
        concurrency=1,
        threads=1,
        connections=1,
        duration_s=elapsed,
        requests=window.answered,
        qps=window.answered / elapsed if elapsed > 0 else 0.0,
        non2xx3xx=window.non2xx3xx,
        status=status,
        reason=reason,
        extra={"sent_busy": window.sent_busy} if window.sent_busy else {},
    )
