"""One middleware that does nothing, written the two ways Starlette and FastAPI users write it:
as a pure ASGI class, and as a `BaseHTTPMiddleware` subclass (FastAPI's `@app.middleware("http")`
is the same). `harness demo` measures both on Starlette, by import path:

    harness compare -t starlette -m none,middleware.noop:PureAsgiNoop,middleware.noop:BaseHttpNoop

Neither changes a byte of the exchange; what one costs over the other is the price of the way it
is written: BaseHTTPMiddleware makes a Request, runs the rest of the app in a task and streams the
response back through memory object streams.
"""

from __future__ import annotations

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


class PureAsgiNoop:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class BaseHttpNoop(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)
