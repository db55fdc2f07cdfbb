"""Middlewares that do to memory what users' middlewares do, written as a user would write them
(no mwbench code): one keeps 1 KB of every request (a cache that never evicts, a list of
requests "for debugging"), one allocates 1 MB per request and frees it, and, in `hog`, one that
keeps 5 MB a request: a server that would take the machine down."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEPT: list[bytes] = []


class _OnEveryRequest:
    """Does `on_request()` before each HTTP request goes on to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.on_request()
        await self.app(scope, receive, send)

    def on_request(self) -> None:
        raise NotImplementedError


class KeepsOneKB(_OnEveryRequest):
    """Keeps 1 KB of every request, forever."""

    def on_request(self) -> None:
        KEPT.append(bytes(1024))


class ChurnsOneMB(_OnEveryRequest):
    """Allocates 1 MB per request and lets it go: a lot of allocation, nothing kept."""

    def on_request(self) -> None:
        buffer = bytearray(1024 * 1024)
        buffer[-1] = 1
        del buffer


class KeepsFiveMB(_OnEveryRequest):
    """Keeps 5 MB of every request: 1,000 requests are 5 GB."""

    def on_request(self) -> None:
        KEPT.append(b"x" * (5 * 1024 * 1024))


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


routes = [Route("/healthz", healthz)]
app = Starlette(routes=routes, middleware=[Middleware(KeepsOneKB), Middleware(ChurnsOneMB)])
hog = Starlette(routes=routes, middleware=[Middleware(KeepsFiveMB)])
