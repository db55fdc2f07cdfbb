"""An aiohttp app as its users write it, with two middlewares."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler


@web.middleware
async def timing(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
    return response


@web.middleware
async def powered_by(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers["X-Powered-By"] = "shop"
    return response


async def read_item(request: web.Request) -> web.Response:
    item_id = int(request.match_info["item_id"])
    return web.json_response({"id": item_id, "name": f"item {item_id}", "price": 9.5})


def create_app() -> web.Application:
    app = web.Application(middlewares=[timing, powered_by])
    app.router.add_get("/items/{item_id}", read_item)
    return app


app = create_app()
