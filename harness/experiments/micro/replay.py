"""The request a micro run replays, the answers it expects, and the check before timing."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from harness.load.request import Request
from middleware import core
from targets.routes import ECHO_PATH, HEALTHZ_BODY, HEALTHZ_PATH, JSON_TYPE, PANIC_PATH


@dataclass(frozen=True)
class MicroRequest:
    """One request, replayed N times. Header names as a client sends them; the drivers convert
    them to each interface's form (WSGI environ keys, lower-case ASGI bytes, aiohttp's CIMultiDict).
    """

    method: str = "GET"
    path: str = HEALTHZ_PATH
    query: str = ""
    headers: tuple[tuple[str, str], ...] = (("Host", "127.0.0.1:8000"),)  # what wrk sends
    body: bytes = b""
    client: tuple[str, int] = ("127.0.0.1", 40000)
    server: tuple[str, int] = ("127.0.0.1", 8000)
    expect_status: int | None = 200  # None: any 2xx
    expect_body: bytes | None = None

    @classmethod
    def from_wire(cls, request: Request) -> MicroRequest:
        """The request wrk sends for `request`: the same method, path, query, headers and body
        (and the Host and Content-Length that wrk adds), checked for the same status."""
        path, _, query = request.path.partition("?")
        headers = [("Host", "127.0.0.1:8000"), *request.headers]
        if request.body and not any(k.lower() == "content-length" for k, _ in request.headers):
            headers.append(("Content-Length", str(len(request.body))))
        return cls(
            method=request.method,
            path=path,
            query=query,
            headers=tuple(headers),
            body=request.body,
            expect_status=request.expect_status,
        )

    def with_headers(self, *extra: tuple[str, str]) -> MicroRequest:
        return dataclasses.replace(self, headers=(*self.headers, *extra))

    def describe(self) -> str:
        target = self.path + (f"?{self.query}" if self.query else "")
        return f"{self.method} {target}" + (f" ({len(self.body)} B body)" if self.body else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [list(h) for h in self.headers],
            "body_bytes": len(self.body),
            "expect_status": self.expect_status,
        }


_ECHO_BODY = b'{"hello":"world","n":[1,2,3]}'
ROUTES: dict[str, MicroRequest] = {
    "healthz": MicroRequest(expect_body=HEALTHZ_BODY),
    "panic": MicroRequest(path=PANIC_PATH, expect_status=500),
    "echo": MicroRequest(
        method="POST",
        path=ECHO_PATH,
        headers=(
            ("Host", "127.0.0.1:8000"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(_ECHO_BODY))),
        ),
        body=_ECHO_BODY,
        expect_body=_ECHO_BODY,
    ),
}


@dataclass
class Reply:
    """What one request answered, for the check before timing."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


def check_reply(reply: Reply, request: MicroRequest, stack: tuple[str, ...]) -> list[str]:
    """Problems with an answer: status, body, and the headers the stack's middlewares must add
    (on a 2xx answer; names the project does not know, e.g. a future `spin:20us`, add none)."""
    found = []
    if request.expect_status is None and not 200 <= reply.status < 300:
        found.append(f"{request.describe()} answered {reply.status}, not 2xx")
    elif request.expect_status is not None and reply.status != request.expect_status:
        found.append(f"{request.describe()} answered {reply.status}, not {request.expect_status}")
    if request.expect_body is not None and reply.body != request.expect_body:
        found.append(f"body {reply.body[:60]!r} is not {request.expect_body[:60]!r}")
    if 200 <= reply.status < 300:
        for name in stack:
            for header, _ in core.added_headers(name, request_id=""):  # present is enough
                if reply.header(header) is None:
                    found.append(f"{name} is in the stack but the answer has no {header}")
    if "recovery" in stack and reply.status == 500 and not is_recovery_answer(reply):
        # The framework's own 500 would pass the status check: what recovery adds is its body.
        found.append(f"recovery is in the stack but the 500 body is {reply.body[:60]!r}")
    return found


def is_recovery_answer(reply: Reply) -> bool:
    """The 500 that the recovery middleware writes: JSON with its error message."""
    content_type = (reply.header("Content-Type") or "").split(";")[0].strip()
    try:
        body = json.loads(reply.body)
    except ValueError:
        return False
    return (
        content_type == JSON_TYPE
        and isinstance(body, dict)
        and body.get("error") == core.ERROR_MESSAGE
    )
