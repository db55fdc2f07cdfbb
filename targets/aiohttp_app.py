"""aiohttp `web.Application`, written the way its users write it."""

from __future__ import annotations

from aiohttp import web

import middleware.aiohttp
from targets.routes import ECHO_PATH, HEALTHZ_BODY, HEALTHZ_PATH, JSON_TYPE, PANIC_PATH, Panic
from targets.settings import log_output_from_env, stack_from_env


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=HEALTHZ_BODY, content_type=JSON_TYPE)


async def panic(request: web.Request) -> web.Response:
    raise Panic()


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read(), content_type=JSON_TYPE)


def create_app(stack: tuple[str, ...] = (), log_output: str = "null") -> web.Application:
    app = web.Application(middlewares=middleware.aiohttp.middlewares(stack, log_output))
    app.router.add_get(HEALTHZ_PATH, healthz, allow_head=True)
    app.router.add_route("*", PANIC_PATH, panic)
    app.router.add_post(ECHO_PATH, echo)
    return app


def from_env() -> web.Application:
    return create_app(stack_from_env(), log_output_from_env())
