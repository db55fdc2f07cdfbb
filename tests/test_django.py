"""Django's targets and middlewares in-process: the chain Django builds from settings.MIDDLEWARE,
and that under ASGI it adapts none of ours (no thread hop) where it adapts a sync-only one.

The servers are in test_targets and test_middleware_servers (both parametrized with `django` and
`django-asgi`); a user's Django project is in test_django_app.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync

import middleware.django as mw_django
from middleware.stack import ORDER
from targets import django_app, django_asgi


def _layers(handler: Any) -> list[Any]:
    """The middleware instances of a built handler, outermost first, and the adapters between
    them: Django wraps each layer in convert_exception_to_response (functools.wraps, so
    `__wrapped__` is the layer) and adapts a layer's get_response where the modes differ."""
    found: list[Any] = []
    current = handler._middleware_chain
    while not inspect.ismethod(current):  # Django's own _get_response: the end
        if isinstance(current, (SyncToAsync, AsyncToSync)):
            found.append(type(current).__name__)
            current = current.func if isinstance(current, SyncToAsync) else current.awaitable
        elif inspect.isfunction(current):
            current = current.__wrapped__
        else:
            found.append(current)
            current = current.get_response
    return found


def test_settings_put_the_stack_in_canonical_order_with_the_known_cost_innermost() -> None:
    chosen = mw_django.settings_for(("spin:20us", "dump", "request-id"), "null")
    assert [entry.rpartition(".")[2] for entry in chosen["MIDDLEWARE"]] == [
        "RequestIdMiddleware", "DumpMiddleware", "KnownCostMiddleware",
    ]  # fmt: skip
    assert chosen[mw_django.KNOWN_COST_SETTING] == ("spin", 20_000)
    assert chosen[mw_django.LOG_OUTPUT_SETTING] == "null"
    assert mw_django.settings_for((), "null")["MIDDLEWARE"] == []


@pytest.mark.parametrize("module", [django_app, django_asgi], ids=["wsgi", "asgi"])
def test_the_handler_runs_our_classes_in_order_and_asgi_adapts_none(module: Any) -> None:
    handler = module.create_app((*reversed(ORDER), "work:10"), "null")
    layers = _layers(handler)
    assert all(not isinstance(layer, str) for layer in layers)  # no SyncToAsync, no AsyncToSync
    assert [type(layer).__name__ for layer in layers] == [
        *(mw_django.CLASSES[name].__name__ for name in ORDER), "KnownCostMiddleware",
    ]  # fmt: skip
    # Over ASGI every layer awaits the next (async mode), over WSGI each calls it: no adapter.
    assert {layer.async_mode for layer in layers} == {module is django_asgi}
    assert module.create_app((), "null")._middleware_chain is not None


class SyncOnly:
    """A sync-only no-op, as Django's docs' first example (no capability flags)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


def test_a_sync_only_middleware_is_adapted_under_asgi_and_ours_around_it_are_not() -> None:
    from django.conf import settings
    from django.core.handlers.asgi import ASGIHandler

    django_asgi.create_app(("request-id",), "null")
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.SyncOnly"]
    chain = _layers(ASGIHandler())
    names = [item if isinstance(item, str) else type(item).__name__ for item in chain]
    # Django runs request-id sync too, so that it need not adapt between the two: one hop to a
    # thread at the top of the chain, and one back into the loop for the view's handler.
    assert names == ["SyncToAsync", "RequestIdMiddleware", "SyncOnly", "AsyncToSync"]
    assert chain[1].async_mode is False


def _asgi_get(app: Any, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []
    body = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if body:
            return body.pop()
        await asyncio.sleep(3600)  # Django cancels its disconnect listener once it has answered
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def test_recovery_is_process_exception_and_its_500_gets_the_outer_headers() -> None:
    app = django_asgi.create_app(("request-id", "recovery", "secure"), "null")
    status, headers, body = _asgi_get(app, "/panic")
    assert status == 500 and b'"internal server error"' in body
    assert headers[b"X-Frame-Options"] == b"DENY"  # secure is inside recovery, as on Flask
    assert headers[b"X-Request-ID"].decode() in body.decode()


def test_a_recovered_panic_is_logged_by_recovery_alone() -> None:
    """Django logs a 500 on django.request ("Internal Server Error: /panic") unless the
    response says it was logged: recovery's entry, with its traceback, is the only one."""
    apps = {stack: django_asgi.create_app(stack, "null") for stack in ((), ("recovery",))}
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("django.request")  # once configured: setup replaces its handlers
    logger.addHandler(handler)
    try:
        for stack, app in apps.items():
            status, _, _ = _asgi_get(app, "/panic")
            assert status == 500
            logged = [r.getMessage() for r in records]
            records.clear()
            assert logged == ([] if stack else ["Internal Server Error: /panic"]), stack
    finally:
        logger.removeHandler(handler)


def test_profile_frames_of_django_are_named_by_middleware() -> None:
    from harness.experiments.profile.attribution import Owner, Rules, owner_of
    from harness.experiments.profile.collapsed import Frame

    def owner(rules: Rules, *frames: str) -> Owner:
        return owner_of(tuple(Frame.parse(f) for f in frames), rules)

    ours = Rules()
    handler = "inner (django/core/handlers/exception.py:55)"
    assert owner(ours, handler) == Owner("django", "framework")
    assert owner(ours, handler, "RequestIdMiddleware.before (middleware/django.py:90)") == Owner(
        "request-id", "middleware"
    )
    assert owner(ours, handler, "DumpMiddleware.after (middleware/django.py:170)").layer == "dump"
    hop = "SyncToAsync.__call__ (asgiref/sync.py:468)"
    assert owner(ours, handler, hop) == Owner("asgiref (sync/async)", "framework")
    # A user's project: its settings.MIDDLEWARE by class, MiddlewareMixin's code theirs together.
    mixin = ("django.utils.deprecation:MiddlewareMixin",)
    theirs = Rules(
        app_layers=("SecurityMiddleware", "SessionMiddleware"),
        app_bases={"SecurityMiddleware": mixin, "SessionMiddleware": mixin},
    )
    security = "SecurityMiddleware.process_request (django/middleware/security.py:30)"
    assert owner(theirs, handler, security) == Owner("SecurityMiddleware", "middleware")
    call = "MiddlewareMixin.__call__ (django/utils/deprecation.py:119)"
    assert owner(theirs, handler, call).layer == "MiddlewareMixin (shared)"
