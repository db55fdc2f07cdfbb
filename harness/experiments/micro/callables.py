"""The apps a micro run calls: a target's, built as its server builds it, and the empty
app of each interface that measures the loop itself."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

from harness.experiments.micro.aiohttp_driver import AiohttpDriver
from harness.experiments.micro.asgi_driver import AsgiDriver
from harness.experiments.micro.driver import Driver, MicroError
from harness.experiments.micro.replay import MicroRequest
from harness.experiments.micro.wsgi_driver import WsgiDriver
from harness.serving.userapp import entry
from harness.serving.userapp.interface import is_coroutine_function
from harness.serving.userapp.spec import AppLoadError, AppSpec
from middleware.stack import import_paths, is_import_path, is_known
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
    """The target's app with `stack`, exactly as its server process builds it: a user's app
    imported afresh with the chosen layers and extras; a target here from its module, with any
    middleware given by import path added innermost by the same loader."""
    extras = tuple(name for name in stack if is_known(name) or is_import_path(name))
    try:
        if target.app is not None:
            spec = AppSpec(target.app, target.factory, target.app_dir)
            keep = [name for name in stack if name not in extras]
            app = entry.build(spec, keep, extras, fresh=True)
            # An async function is an ASGI app as it is, unless it was named as a factory.
            if target.factory and is_coroutine_function(app):
                raise MicroError(f"{target.app} is an async factory: micro needs the app itself")
            return app
        module = importlib.import_module(target.module)
        named = tuple(name for name in stack if not is_import_path(name))
        make = module.create_app if hasattr(module, "create_app") else module.create_handler
        app = make(named, log_output)
        paths = import_paths(stack)
        return entry.prepare(app, None, paths, target.app_dir) if paths else app
    except AppLoadError as exc:
        raise MicroError(f"{target.name}: {exc}") from None


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
