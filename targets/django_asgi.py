"""The Django project of targets.django_app, over ASGI: the same settings, views and middlewares.

Its views are sync, so Django runs each in its one thread for sync code (a hop from the event
loop and back per request); the middlewares are sync- and async-capable, so they add none.
"""

from __future__ import annotations

from typing import Any

from targets.django_app import configure
from targets.settings import log_output_from_env, stack_from_env


def create_app(stack: tuple[str, ...] = (), log_output: str = "null") -> Any:
    """The ASGI handler the uvicorn worker serves, with `stack` in its MIDDLEWARE."""
    from django.core.handlers.asgi import ASGIHandler

    configure(stack, log_output)
    return ASGIHandler()


def from_env() -> Any:
    return create_app(stack_from_env(), log_output_from_env())
