"""FastAPI, written the way its users write it: path operations on a router, async handlers.

FastAPI is a Starlette subclass, so the middlewares go in exactly as on the starlette target
(middleware.starlette.apply: our pure ASGI classes through `add_middleware`), and the difference
between the two targets is what FastAPI adds per request: its routing and request handling, and
the layers of its own middleware stack.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

import middleware.starlette
from targets.routes import ECHO_PATH, HEALTHZ_BODY, HEALTHZ_PATH, JSON_TYPE, PANIC_PATH, Panic
from targets.settings import log_output_from_env, stack_from_env

# Module level, as in any FastAPI project; each app built below includes it.
router = APIRouter()


# `async def` everywhere: a plain `def` path operation would run in a thread pool, a cost the
# Starlette target does not pay, and this target would then measure that, not FastAPI.
@router.get(HEALTHZ_PATH)
async def healthz() -> Response:
    # A Response, not `return {"status": "ok"}`. A returned dict is not sent as it is: FastAPI
    # runs it through jsonable_encoder and renders a JSONResponse on every request. The bytes
    # happen to be the same 15 today (Starlette's compact separators; checked with FastAPI
    # 0.165), but they would be whatever the serializer of the installed version makes of the
    # dict, not the body every target sends, and the cost measured would include a
    # serialization that no other target's /healthz does. A Response is FastAPI's documented
    # way to send a body as it is.
    return Response(HEALTHZ_BODY, media_type=JSON_TYPE)


@router.api_route(PANIC_PATH, methods=["GET", "POST"])
async def panic() -> Response:
    raise Panic()


@router.post(ECHO_PATH)
async def echo(request: Request) -> Response:
    # The raw body, not a Pydantic model or `Body()`: /echo sends back any body byte for byte
    # (the tests send non-JSON and 1 MB bodies), which validation would refuse or re-encode.
    return Response(await request.body(), media_type=JSON_TYPE)


def build_fastapi() -> FastAPI:
    # No /openapi.json, /docs or /redoc: only the route table's paths exist, as on every target.
    # Anything else is FastAPI's own 404 (`{"detail":"Not Found"}`), as Starlette's target
    # answers with Starlette's: each framework's default, like the other framework targets.
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router)
    return app


def create_app(stack: tuple[str, ...] = (), log_output: str = "null") -> Any:
    # Starlette's apply, reused: FastAPI keeps Starlette's add_middleware and its
    # ServerErrorMiddleware outermost, so `recovery` sits inside it here too.
    return middleware.starlette.apply(build_fastapi(), stack, log_output)


def from_env() -> Any:
    return create_app(stack_from_env(), log_output_from_env())
