"""A bare ASGI callable: the baseline Starlette is compared with, on the same uvicorn worker."""

from __future__ import annotations

from typing import Any

import middleware.asgi
from targets import routes
from targets.settings import log_output_from_env, stack_from_env

_JSON = routes.JSON_TYPE.encode()


def _start(status: int, length: int) -> dict[str, Any]:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", _JSON), (b"content-length", str(length).encode())],
    }


_HEALTHZ_START = _start(200, len(routes.HEALTHZ_BODY))
_HEALTHZ_BODY = {"type": "http.response.body", "body": routes.HEALTHZ_BODY}
# The measured route's names bound here: a baseline's request pays no lookup in `routes`.
_HEALTHZ_PATH = routes.HEALTHZ_PATH


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    if path == _HEALTHZ_PATH and method in ("GET", "HEAD"):
        await send(_HEALTHZ_START)
        await send(_HEALTHZ_BODY)
        return
    if path == routes.PANIC_PATH:
        raise routes.Panic()
    if path == routes.ECHO_PATH and method == "POST":
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        await send(_start(200, len(body)))
        await send({"type": "http.response.body", "body": body})
        return
    await send(_start(404, len(routes.NOT_FOUND_BODY)))
    await send({"type": "http.response.body", "body": routes.NOT_FOUND_BODY})


def create_app(stack: tuple[str, ...] = (), log_output: str = "null") -> Any:
    return middleware.asgi.wrap(app, stack, log_output)


def from_env() -> Any:
    return create_app(stack_from_env(), log_output_from_env())
