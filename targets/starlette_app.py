"""Starlette, written the way its users write it."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import middleware.starlette
from targets.routes import ECHO_PATH, HEALTHZ_BODY, HEALTHZ_PATH, JSON_TYPE, PANIC_PATH, Panic
from targets.settings import log_output_from_env, stack_from_env


async def healthz(request: Request) -> Response:
    return Response(HEALTHZ_BODY, media_type=JSON_TYPE)


async def panic(request: Request) -> Response:
    raise Panic()


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type=JSON_TYPE)


def build_starlette() -> Starlette:
    return Starlette(
        routes=[
            Route(HEALTHZ_PATH, healthz, methods=["GET"]),
            Route(PANIC_PATH, panic, methods=["GET", "POST"]),
            Route(ECHO_PATH, echo, methods=["POST"]),
        ]
    )


def create_app(stack: tuple[str, ...] = (), log_output: str = "null") -> Any:
    # The pure ASGI classes raw-asgi uses, added with Starlette's own add_middleware: that puts
    # them inside Starlette's ServerErrorMiddleware, so `recovery` sees an exception first.
    return middleware.starlette.apply(build_starlette(), stack, log_output)


def from_env() -> Any:
    return create_app(stack_from_env(), log_output_from_env())
