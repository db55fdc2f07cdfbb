"""Django: the seven middlewares as Django middleware, listed in `settings.MIDDLEWARE`.

Each is a class taking `get_response`, as Django's docs write them, and both sync- and
async-capable: built around an async handler (ASGI), it marks itself a coroutine function and
awaits the next layer, so Django never adapts it (no thread hop); around a sync one (WSGI) it calls
it. The per-request logic is middleware.core's, as on every other framework.

Django turns every exception of a view into a response before it reaches a middleware's
`__call__` (convert_exception_to_response wraps each layer): `recovery` is therefore a
`process_exception` hook, as Flask's is an error handler. It runs inside Django, after the view,
and its 500 passes back out through secure, nocache, cors and dump like any response.

Django builds a middleware from its import path with `get_response` alone, so what the adapters
of the other frameworks take as arguments comes from settings, as Django's own middlewares read
theirs: MWBENCH_LOG_OUTPUT (the log sink), MWBENCH_KNOWN_COST (`spin:N` / `work:N`).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from middleware import core, sink, spin
from middleware.stack import KNOWN, classes_in, layers

GetResponse = Callable[[HttpRequest], Any]

LOG_OUTPUT_SETTING = "MWBENCH_LOG_OUTPUT"
KNOWN_COST_SETTING = "MWBENCH_KNOWN_COST"


def _write() -> Callable[[str], None]:
    return sink.open_sink(getattr(settings, LOG_OUTPUT_SETTING, "stdout")).write


class _Middleware:
    """Sync and async alike: `before` may answer at once (a response) or return a state, the
    next layer runs, `after` finishes the response with the state."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Django then sees this instance as async and awaits what __call__ returns.
            markcoroutinefunction(self)

    def before(self, request: HttpRequest) -> Any:
        return None

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> None:
        return None

    def done(self, state: Any) -> None:
        """Runs last, whatever happened (request-id resets its context variable here)."""
        return None

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        state = self.before(request)
        if isinstance(state, HttpResponseBase):
            return state
        try:
            response = self.get_response(request)
            self.after(request, response, state)
            return response
        finally:
            self.done(state)

    async def _acall(self, request: HttpRequest) -> Any:
        state = self.before(request)
        if isinstance(state, HttpResponseBase):
            return state
        try:
            next_layer: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
            response = await next_layer(request)
            self.after(request, response, state)
            return response
        finally:
            self.done(state)


class RequestIdMiddleware(_Middleware):
    def before(self, request: HttpRequest) -> Any:
        rid = core.accept_request_id(request.META.get(core.REQUEST_ID_WSGI_KEY))
        return rid, core.request_id_var.set(rid)

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> None:
        response[core.REQUEST_ID_HEADER] = state[0]

    def done(self, state: Any) -> None:
        # One thread (WSGI) or one task per connection (ASGI) serves many requests: no leak.
        core.request_id_var.reset(state[1])


class LoggerMiddleware(_Middleware):
    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self._write = _write()

    def before(self, request: HttpRequest) -> Any:
        return perf_counter()

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> None:
        self._write(
            core.access_line(
                request.META.get("REMOTE_ADDR"),
                request.method or "",
                request.path,
                response.status_code,
                perf_counter() - state,
                core.current_request_id(),
            )
        )


class RecoveryMiddleware(_Middleware):
    """The view's exception becomes the 500 JSON body (Django calls process_exception only for
    the view's own exceptions; a middleware's are Django's 500)."""

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self._write = _write()

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse:
        rid = core.request_id_var.get()
        self._write(core.panic_entry(exception, rid))
        response = HttpResponse(core.error_body(rid), status=500, content_type="application/json")
        # Logged once, here, with its traceback: Django would log the 500 again on django.request
        # ("Internal Server Error: /panic"), as it does for a response whose exception it logged
        # itself, unless the response says it was (django.utils.log.log_response).
        response._has_been_logged = True
        return response


class SecureMiddleware(_Middleware):
    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> None:
        headers = core.SECURE_HEADERS_HTTPS if request.is_secure() else core.SECURE_HEADERS
        for name, value in headers:
            response[name] = value


class NoCacheMiddleware(_Middleware):
    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> None:
        for name, value in core.nocache_headers():
            response[name] = value


class CORSMiddleware(_Middleware):
    def before(self, request: HttpRequest) -> Any:
        origin = request.META.get("HTTP_ORIGIN")
        if origin is not None and request.method == "OPTIONS":
            asked = request.META.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
            return HttpResponse(status=204, headers=core.cors_preflight_headers(origin, asked))
        return origin

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> None:
        if state is not None:  # not a cross-origin request: nothing to add
            for name, value in core.cors_headers(state):
                response[name] = value


class DumpMiddleware(_Middleware):
    """Reads the request body up front, as gin-dump does (Django keeps it for the view)."""

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self._write = _write()

    def before(self, request: HttpRequest) -> Any:
        return request.body

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> None:
        shown = b"" if response.streaming else response.content
        self._write(
            core.dump_entry(
                request_id=core.current_request_id(),
                request=core.DumpedRequest(
                    method=request.method or "",
                    path=request.path,
                    query=request.META.get("QUERY_STRING", ""),
                    headers=request.headers.items(),
                    body=state,
                    size=len(state),
                ),
                status=response.status_code,
                response_headers=response.items(),
                response_body=shown,
                response_size=len(shown),
            )
        )


class KnownCostMiddleware(_Middleware):
    """Does a known amount of work per request (spin.burner: `spin:N`'s CPU time or `work:N`'s
    loop, as settings.MWBENCH_KNOWN_COST says), then calls the next layer: the middleware
    `harness calibrate` measures."""

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        kind, amount = getattr(settings, KNOWN_COST_SETTING)
        self._burn = spin.burner(kind, amount)

    def before(self, request: HttpRequest) -> Any:
        self._burn()


CLASSES: dict[str, type[_Middleware]] = classes_in(sys.modules[__name__])


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def settings_for(stack: tuple[str, ...], log_output: str) -> dict[str, Any]:
    """The settings that put `stack` in a project: MIDDLEWARE, outermost first in the canonical
    order (middleware.stack.layers), a known cost innermost, and what the classes read."""
    entries: list[str] = []
    chosen: dict[str, Any] = {LOG_OUTPUT_SETTING: log_output}
    for name, amount in layers(stack):
        if name in KNOWN:
            entries.append(_path(KnownCostMiddleware))
            chosen[KNOWN_COST_SETTING] = (name, amount)
        else:
            entries.append(_path(CLASSES[name]))
    chosen["MIDDLEWARE"] = entries
    return chosen
