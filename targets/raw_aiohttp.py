"""aiohttp's low-level server (no router, no Application): the baseline for aiohttp."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

import middleware.aiohttp
from targets import routes
from targets.settings import log_output_from_env, stack_from_env

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# The measured route's names bound here: a baseline's request pays no lookup in `routes`.
_HEALTHZ_PATH, _HEALTHZ_BODY = routes.HEALTHZ_PATH, routes.HEALTHZ_BODY
_JSON_TYPE = routes.JSON_TYPE


async def handler(request: web.BaseRequest) -> web.StreamResponse:
    if request.path == _HEALTHZ_PATH and request.method in ("GET", "HEAD"):
        return web.Response(body=_HEALTHZ_BODY, content_type=_JSON_TYPE)
    if request.path == routes.PANIC_PATH:
        raise routes.Panic()
    if request.path == routes.ECHO_PATH and request.method == "POST":
        return web.Response(body=await request.read(), content_type=routes.JSON_TYPE)
    return web.Response(status=404, body=routes.NOT_FOUND_BODY, content_type=routes.JSON_TYPE)


class _LowLevelRunner(web.AppRunner):
    """aiohttp's gunicorn worker only runs an Application or an AppRunner. This runner keeps the
    worker (its signals, keep-alive and graceful shutdown) but serves a bare `web.Server`, which is
    exactly what `web.ServerRunner` would do outside gunicorn."""

    def __init__(self, request_handler: Handler, **kwargs: Any) -> None:
        super().__init__(web.Application(), **kwargs)
        self._request_handler = request_handler

    async def _make_server(self) -> web.Server:
        kwargs = {k: v for k, v in self._kwargs.items() if k != "access_log_class"}
        return web.Server(self._request_handler, request_factory=None, **kwargs)

    async def shutdown(self) -> None:
        pass

    async def _cleanup_server(self) -> None:
        pass


def create_handler(stack: tuple[str, ...] = (), log_output: str = "null") -> Handler:
    return middleware.aiohttp.wrap_handler(handler, stack, log_output)


def from_env() -> Callable[[], Awaitable[web.AppRunner]]:
    request_handler = create_handler(stack_from_env(), log_output_from_env())

    async def make_runner() -> web.AppRunner:
        return _LowLevelRunner(request_handler, access_log=None)

    return make_runner
