"""A FastAPI app as its users write it, with three kinds of middleware: a pure ASGI class, a
`BaseHTTPMiddleware` subclass and one of Starlette's own."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.gzip import GZipMiddleware

Scope = dict[str, Any]


class ServerTiming:
    """Pure ASGI: adds `Server-Timing` with the time spent below it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_timing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                headers = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={took:.3f}".encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_timing)


class PoweredBy(BaseHTTPMiddleware):
    """The same job the slow way: a BaseHTTPMiddleware, as many tutorials write it."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["x-powered-by"] = "shop"
        return response


app = FastAPI(title="shop", openapi_url=None, docs_url=None, redoc_url=None)
# add_middleware puts each new one outermost: the order, outermost first, is
# GZipMiddleware, PoweredBy, ServerTiming.
app.add_middleware(ServerTiming)
app.add_middleware(PoweredBy)
app.add_middleware(GZipMiddleware, minimum_size=1000)


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, Any]:
    return {"id": item_id, "name": f"item {item_id}", "price": 9.5}


@app.post("/items")
async def create_item(item: dict[str, Any]) -> dict[str, Any]:
    return {"created": item}


def create_app() -> FastAPI:
    """The same app from a factory (`--factory`)."""
    return app


def broken_factory() -> FastAPI:
    raise RuntimeError("no database configured")


@app.get("/broken")
async def broken() -> dict[str, Any]:
    raise RuntimeError("a bug in the handler")
