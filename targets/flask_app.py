"""Flask, written the way its users write it."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

import middleware.flask
from targets.routes import ECHO_PATH, HEALTHZ_BODY, HEALTHZ_PATH, JSON_TYPE, PANIC_PATH, Panic
from targets.settings import log_output_from_env, stack_from_env


def build_flask() -> Flask:
    app = Flask("mwbench-flask")

    @app.get(HEALTHZ_PATH)
    def healthz() -> Response:
        return Response(HEALTHZ_BODY, mimetype=JSON_TYPE)

    @app.route(PANIC_PATH, methods=["GET", "POST"])
    def panic() -> Response:
        raise Panic()

    @app.post(ECHO_PATH)
    def echo() -> Response:
        return Response(request.get_data(), mimetype=JSON_TYPE)

    return app


def create_app(stack: tuple[str, ...] = (), log_output: str = "null") -> Any:
    """The WSGI callable gunicorn serves: the Flask app with the stack applied."""
    return middleware.flask.apply(build_flask(), stack, log_output)


def from_env() -> Any:
    return create_app(stack_from_env(), log_output_from_env())
