"""aiohttp middlewares: `@web.middleware` functions for `web.Application(middlewares=...)`, and the
same functions composed around the handler of the low-level `web.Server` (raw-aiohttp).

The low-level server has no middleware mechanism; `wrap_handler` composes the functions exactly
as `web.Application` does (`partial(mw, handler=next)`), so both targets run the same code.

aiohttp signals 404, 405 and friends by raising `web.HTTPException`, which is also the response
aiohttp sends. Middlewares that add headers therefore add them to a raised HTTPException too
(so a 404 carries the same headers as on every other framework), and `recovery` lets it through.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from aiohttp import web
from multidict import istr

from middleware import core, sink
from middleware.spin import burner
from middleware.stack import KNOWN, layers

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# Called as mw(request, handler=...) by aiohttp and by wrap_handler alike; web.Application's own
# annotation wants web.Request, which the low-level server does not give, hence `...`.
Middleware = Callable[..., Awaitable[web.StreamResponse]]

_REQUEST_ID = istr(core.REQUEST_ID_HEADER)
_ORIGIN = istr("Origin")
_ACR_HEADERS = istr("Access-Control-Request-Headers")


def request_id() -> Middleware:
    @web.middleware
    async def request_id_middleware(
        request: web.BaseRequest, handler: Handler
    ) -> web.StreamResponse:
        rid = core.accept_request_id(request.headers.get(_REQUEST_ID))
        token = core.request_id_var.set(rid)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[_REQUEST_ID] = rid
            raise
        finally:
            # One task serves every request of a keep-alive connection: do not leak the id.
            core.request_id_var.reset(token)
        response.headers[_REQUEST_ID] = rid
        return response

    return request_id_middleware


def logger(log_output: str) -> Middleware:
    write = sink.open_sink(log_output).write

    @web.middleware
    async def logger_middleware(request: web.BaseRequest, handler: Handler) -> web.StreamResponse:
        started = perf_counter()
        status = 500  # what aiohttp answers to an exception that gets past us
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            write(
                core.access_line(
                    request.remote,
                    request.method,
                    request.path,
                    status,
                    perf_counter() - started,
                    core.current_request_id(),
                )
            )

    return logger_middleware


def recovery(log_output: str) -> Middleware:
    write = sink.open_sink(log_output).write

    @web.middleware
    async def recovery_middleware(request: web.BaseRequest, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise  # an answer (404, 405...), not a failure
        except Exception as exc:
            # aiohttp's own criterion (web_protocol.handle_error): once bytes of a response are
            # written the response is not rewritten; aiohttp logs it and drops the connection.
            if request.writer.output_size > 0:
                raise
            rid = core.request_id_var.get()
            write(core.panic_entry(exc, rid))
            return web.Response(
                status=500, body=core.error_body(rid), content_type="application/json"
            )

    return recovery_middleware


def secure() -> Middleware:
    # secure and nocache are written out separately (not one shared closure) so that a profile
    # can tell their costs apart.
    @web.middleware
    async def secure_middleware(request: web.BaseRequest, handler: Handler) -> web.StreamResponse:
        headers = core.SECURE_HEADERS_HTTPS if request.secure else core.SECURE_HEADERS
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(headers)
            raise
        response.headers.update(headers)  # update: replaces, never duplicates
        return response

    return secure_middleware


def nocache() -> Middleware:
    @web.middleware
    async def nocache_middleware(request: web.BaseRequest, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(core.nocache_headers())
            raise
        response.headers.update(core.nocache_headers())
        return response

    return nocache_middleware


def cors() -> Middleware:
    @web.middleware
    async def cors_middleware(request: web.BaseRequest, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(_ORIGIN)
        if origin is None:  # not a cross-origin request: nothing to add
            return await handler(request)
        if request.method == "OPTIONS":
            return web.Response(
                status=204,
                headers=core.cors_preflight_headers(origin, request.headers.get(_ACR_HEADERS)),
            )
        extra = core.cors_headers(origin)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(extra)
            raise
        response.headers.update(extra)
        return response

    return cors_middleware


def dump(log_output: str) -> Middleware:
    write = sink.open_sink(log_output).write

    @web.middleware
    async def dump_middleware(request: web.BaseRequest, handler: Handler) -> web.StreamResponse:
        # Read up front, as gin-dump does; aiohttp keeps it, so the handler's read() gets it too.
        body = await request.read() if request.body_exists else b""

        def entry(response: web.StreamResponse | None, error: BaseException | None) -> str:
            shown = b""
            if isinstance(response, web.Response) and isinstance(response.body, bytes):
                shown = response.body
            return core.dump_entry(
                request_id=core.current_request_id(),
                request=core.DumpedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query_string,
                    headers=request.headers.items(),
                    body=body,
                    size=len(body),
                ),
                status=None if response is None else response.status,
                response_headers=() if response is None else response.headers.items(),
                response_body=shown,
                response_size=len(shown),
                error=error,
            )

        try:
            response = await handler(request)
        except web.HTTPException as exc:
            write(entry(exc, None))
            raise
        except BaseException as exc:
            write(entry(None, exc))
            raise
        write(entry(response, None))
        return response

    return dump_middleware


def known_cost(kind: str, amount: int) -> Middleware:
    """Does a known amount of work per request (`burner`: `spin:N`'s CPU time or `work:N`'s
    loop), then calls the handler: the middleware `harness calibrate` measures."""
    burn = burner(kind, amount)

    @web.middleware
    async def known_cost_middleware(
        request: web.BaseRequest, handler: Handler
    ) -> web.StreamResponse:
        burn()
        return await handler(request)

    return known_cost_middleware


_FACTORIES: dict[str, Callable[[str], Middleware]] = {
    "request-id": lambda log_output: request_id(),
    "logger": logger,
    "recovery": recovery,
    "secure": lambda log_output: secure(),
    "nocache": lambda log_output: nocache(),
    "cors": lambda log_output: cors(),
    "dump": dump,
}


def middlewares(stack: tuple[str, ...], log_output: str) -> list[Any]:
    """For `web.Application(middlewares=...)`: outermost first, in the canonical order
    (middleware.stack.layers; aiohttp runs the list's first entry outermost); a middleware not in
    `stack` is not in the list at all."""
    return [
        known_cost(name, amount)
        if name in KNOWN and amount is not None
        else _FACTORIES[name](log_output)
        for name, amount in layers(stack)
    ]


def wrap_handler(handler: Handler, stack: tuple[str, ...], log_output: str) -> Handler:
    """`handler` inside the same middlewares, for the low-level server, composed as aiohttp's
    Application composes them."""
    for mw in reversed(middlewares(stack, log_output)):
        handler = functools.partial(mw, handler=handler)
    return handler
