"""A middleware whose cost is known, written as a user would write one (no mwbench code): it
burns 20 µs of its thread's CPU time per request. `harness compare --app` should find +20 µs for
it, as it does for mwbench's own `spin:20us` in the same run."""

from __future__ import annotations

import time
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

COST_NS = 20_000


class Burn20us:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            end = time.thread_time_ns() + COST_NS
            while time.thread_time_ns() < end:
                pass
        await self.app(scope, receive, send)


async def ping(request: Request) -> JSONResponse:
    return JSONResponse({"pong": True})


app = Starlette(routes=[Route("/ping", ping)], middleware=[Middleware(Burn20us)])
