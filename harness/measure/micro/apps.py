"""The apps a micro run calls: a target's, built as its server builds it, and the empty
app of each interface that measures the loop itself."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

from harness.measure.micro.aiohttp_driver import AiohttpDriver
from harness.measure.micro.asgi_driver import AsgiDriver
from harness.measure.micro.driver import Driver, MicroError
from harness.measure.micro.request import MicroRequest
from harness.measure.micro.wsgi_driver import WsgiDriver
from targets.table import Target


def make_driver(
    interface: str,
    app: Any,
    request: MicroRequest,
    *,
    loop: asyncio.AbstractEventLoop,
    log_output: str = "null",
) -> Driver:
    if interface == "wsgi":
        return WsgiDriver(app, request, log_output=log_output)
    if interface == "asgi":
        return AsgiDriver(app, request, loop=loop, log_output=log_output)
    if interface == "aiohttp":
        return AiohttpDriver(app, request, loop=loop, log_output=log_output)
    raise MicroError(f"no in-process driver for interface {interface!r}")


def build_app(target: Target, stack: tuple[str, ...], log_output: str) -> Any:
    """The target's app with `stack`, exactly as its server process builds it."""
    module = importlib.import_module(target.module)
    if hasattr(module, "create_app"):
        return module.create_app(stack, log_output)
    return module.create_handler(stack, log_output)


def _empty_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


_EMPTY_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", b"0")],
}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}


async def _empty_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send(_EMPTY_START)
    await send(_EMPTY_BODY)


async def _empty_aiohttp(request: Any) -> Any:
    from aiohttp import web

    return web.Response()


EMPTY_APPS: dict[str, Any] = {"wsgi": _empty_wsgi, "asgi": _empty_asgi, "aiohttp": _empty_aiohttp}
