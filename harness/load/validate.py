"""Before a stack is timed, check that it answers as it must: a wrong answer is never timed."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from harness.errors import RunError
from harness.load.request import Request
from middleware import core
from middleware.stack import ORDER
from targets.routes import HEALTHZ_BODY, HEALTHZ_PATH, JSON_TYPE

PROBE_ID = "mwbench-validate-0001"
PROBE_ORIGIN = "http://localhost:8080"

Headers = http.client.HTTPMessage
# Headers whose value is the moment of the request: present is all a check can ask.
_OF_THE_MOMENT = frozenset({"last-modified"})


class ValidationError(RunError):
    """A target that answers wrongly; the message lists every problem on one line."""


def problems(headers: Headers, status: int, body: bytes, stack: tuple[str, ...]) -> list[str]:
    found = []
    if status != 200:
        found.append(f"GET {HEALTHZ_PATH} answered {status}, not 200")
    if body != HEALTHZ_BODY:
        found.append(f"body {body[:60]!r} is not {HEALTHZ_BODY!r}")
    content_type = headers.get("Content-Type", "")
    if content_type.split(";")[0].strip() != JSON_TYPE:
        found.append(f"Content-Type {content_type!r} is not {JSON_TYPE}")
    return found + mark_problems(headers, stack)


def mark_problems(headers: Headers, stack: tuple[str, ...]) -> list[str]:
    """Each middleware of ours in `stack` set every header it must, and none that is not in it
    left its mark."""
    found = []
    for name in ORDER:
        expected = core.added_headers(name, PROBE_ID, PROBE_ORIGIN)
        if not expected:
            continue
        if name not in stack:
            header = expected[0][0]  # its mark, whose presence shows it ran
            if (value := headers.get(header)) is not None:
                found.append(f"{name} is not in the stack but the answer has {header}: {value!r}")
            continue
        for header, wanted in expected:
            value = headers.get(header)
            if value is None:
                found.append(f"{name} is in the stack but the answer has no {header}")
            elif header.lower() not in _OF_THE_MOMENT and value != wanted:
                found.append(f"{name} is in the stack but {header} is {value!r}, not {wanted!r}")
    return found


def validate(
    url: str,
    stack: tuple[str, ...],
    request: Request | None = None,
    *,
    marks: bool = True,
    timeout: float = 5.0,
) -> None:
    """Send `request` (default: GET /healthz) the way a browser with an id would; raise
    ValidationError on any problem. The default request on a target here must answer exactly
    its /healthz; any other request must answer its expected status. `marks`: check the headers
    this project's middlewares add (not for a user's app, whose layers are its own)."""
    chosen = request or Request()
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    probe = {"X-Request-ID": PROBE_ID, "Origin": PROBE_ORIGIN} if marks else {}
    try:
        conn.request(
            chosen.method,
            chosen.path,
            body=chosen.body or None,
            headers={**probe, **dict(chosen.headers)},
        )
        response = conn.getresponse()
        status, body = response.status, response.read()
        if marks and chosen == Request():
            found = problems(response.headers, status, body, stack)
        else:
            found = [p for p in [chosen.status_problem(status)] if p]
            if marks and 200 <= status < 300:
                found += mark_problems(response.headers, stack)
    except OSError as exc:
        found = [f"{chosen.describe()} failed: {exc}"]
    finally:
        conn.close()
    if found:
        raise ValidationError("; ".join(found))
