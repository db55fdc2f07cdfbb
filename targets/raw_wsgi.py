"""A bare WSGI callable: the baseline that Flask is compared with, on the same gunicorn workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import middleware.wsgi
from targets import routes
from targets.settings import log_output_from_env, stack_from_env

StartResponse = Callable[..., Any]

_JSON_HEALTHZ = [
    ("Content-Type", routes.JSON_TYPE),
    ("Content-Length", str(len(routes.HEALTHZ_BODY))),
]
_JSON_404 = [
    ("Content-Type", routes.JSON_TYPE),
    ("Content-Length", str(len(routes.NOT_FOUND_BODY))),
]

# The measured route's names bound here: a baseline's request pays no lookup in `routes`.
_HEALTHZ_PATH, _HEALTHZ_BODY = routes.HEALTHZ_PATH, routes.HEALTHZ_BODY


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    if path == _HEALTHZ_PATH and method in ("GET", "HEAD"):
        start_response("200 OK", list(_JSON_HEALTHZ))
        return [_HEALTHZ_BODY]
    if path == routes.PANIC_PATH:
        raise routes.Panic()
    if path == routes.ECHO_PATH and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        start_response(
            "200 OK", [("Content-Type", routes.JSON_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body]
    start_response("404 Not Found", list(_JSON_404))
    return [routes.NOT_FOUND_BODY]


def create_app(stack: tuple[str, ...] = (), log_output: str = "null") -> Any:
    return middleware.wsgi.wrap(app, stack, log_output)


def from_env() -> Any:
    return create_app(stack_from_env(), log_output_from_env())
