"""Before a stack is timed, check that it answers as it must: a wrong answer is never timed."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from urllib.parse import urlsplit

from targets.routes import HEALTHZ_BODY, HEALTHZ_PATH, JSON_TYPE

PROBE_ID = "mwbench-validate-0001"
PROBE_ORIGIN = "http://localhost:8080"

Headers = http.client.HTTPMessage
# For each middleware: a header whose presence shows it ran, and a check of that header's value.
_MARKS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "request-id": ("X-Request-ID", lambda v: v == PROBE_ID),
    "secure": ("X-Frame-Options", lambda v: v == "DENY"),
    "nocache": ("Cache-Control", lambda v: "no-store" in v and "no-cache" in v),
    "cors": ("Access-Control-Allow-Origin", lambda v: v in (PROBE_ORIGIN, "*")),
}


class ValidationError(RuntimeError):
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
    for name, (header, check) in _MARKS.items():
        value = headers.get(header)
        if name in stack and (value is None or not check(value)):
            found.append(f"{name} is in the stack but {header} is {value!r}")
        if name not in stack and value is not None:
            found.append(f"{name} is not in the stack but the answer has {header}: {value!r}")
    return found


def validate(url: str, stack: tuple[str, ...], timeout: float = 5.0) -> None:
    """GET /healthz the way a browser with an id would; raise ValidationError on any problem."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(
            "GET", HEALTHZ_PATH, headers={"X-Request-ID": PROBE_ID, "Origin": PROBE_ORIGIN}
        )
        response = conn.getresponse()
        found = problems(response.headers, response.status, response.read(), stack)
    except OSError as exc:
        found = [f"GET {HEALTHZ_PATH} failed: {exc}"]
    finally:
        conn.close()
    if found:
        raise ValidationError("; ".join(found))
