"""Django, a single-module project configured in code (no database, no manage.py), over WSGI.

The views are plain sync functions, as most Django projects' are; `targets.django_asgi` serves the
same project over ASGI, where Django runs them in its thread (sync_to_async). The middlewares are
middleware.django's classes, put in `settings.MIDDLEWARE` by name.
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

import middleware.django
from targets.routes import ECHO_PATH, HEALTHZ_BODY, HEALTHZ_PATH, JSON_TYPE, PANIC_PATH, Panic
from targets.settings import log_output_from_env, stack_from_env

# Django logs a view's unhandled exception on `django.request`, and with DEBUG off only mails it
# to ADMINS: a deployed project sends it to the console instead, as every other framework here
# does (its server's error log).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}


def _json(body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type=JSON_TYPE)
    # Django leaves Content-Length to CommonMiddleware (not in this project): set here, so the
    # answer is the one every target gives.
    response["Content-Length"] = str(len(body))
    return response


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return _json(HEALTHZ_BODY)


def panic(request: HttpRequest) -> HttpResponse:
    raise Panic()


@require_POST
def echo(request: HttpRequest) -> HttpResponse:
    return _json(request.body)


urlpatterns = [
    path(HEALTHZ_PATH.lstrip("/"), healthz),
    path(PANIC_PATH.lstrip("/"), panic),
    path(ECHO_PATH.lstrip("/"), echo),
]


def configure(stack: tuple[str, ...], log_output: str) -> None:
    """This project's settings, with `stack` as its MIDDLEWARE. The settings are the process's:
    configured once, and MIDDLEWARE replaced for each handler built (a handler reads it when it
    is built, so handlers built one after the other each keep their own stack)."""
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="mwbench-django-target",  # nothing here signs anything
            ALLOWED_HOSTS=["*"],  # the servers bind loopback; wrk sends Host: 127.0.0.1:PORT
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[],
            DATABASES={},
            USE_TZ=True,
            LOGGING=LOGGING,
        )
        django.setup(set_prefix=False)
    for name, value in middleware.django.settings_for(stack, log_output).items():
        setattr(settings, name, value)


def create_app(stack: tuple[str, ...] = (), log_output: str = "null") -> Any:
    """The WSGI handler gunicorn serves, with `stack` in its MIDDLEWARE."""
    from django.core.handlers.wsgi import WSGIHandler

    configure(stack, log_output)
    return WSGIHandler()


def from_env() -> Any:
    return create_app(stack_from_env(), log_output_from_env())
