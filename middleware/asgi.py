"""Pure ASGI middlewares, for raw-asgi and Starlette: `__init__(app, ...)` and
`async __call__(scope, receive, send)`, never Starlette's BaseHTTPMiddleware (which runs the app in
a separate task and streams the body through a memory channel: ~100 µs a request).

Headers are added by wrapping `send` and rewriting `http.response.start`. The message is copied,
never mutated: an app may send the same dict for every request (targets/raw_asgi.py does), and a
middleware that appended to its header list would grow it by one header per request.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from time import perf_counter
from typing import Any

from middleware import core, sink, spin
from middleware.stack import KNOWN, classes_in
from middleware.stack import layers as stack_layers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# What `wrap` accepts: any ASGI callable, however narrowly it annotates its scope.
AnyASGIApp = Callable[..., Awaitable[None]]
RawHeaders = Iterable[tuple[bytes, bytes]]

_START = "http.response.start"


def _replace(headers: RawHeaders, names: frozenset[bytes], extra: RawHeaders) -> list[Any]:
    # ASGI servers and Starlette send lower-case names; the spec only says "should", hence lower().
    kept = [h for h in headers if h[0].lower() not in names]
    kept.extend(extra)
    return kept


def _sending_headers(send: Send, names: frozenset[bytes], extra: RawHeaders) -> Send:
    """`send`, with `extra` in place of the response's headers named `names`."""

    async def send_headers(message: Message) -> None:
        if message["type"] == _START:
            message = {**message, "headers": _replace(message.get("headers", ()), names, extra)}
        await send(message)

    return send_headers


def _header(scope: Scope, name: bytes) -> bytes | None:
    key: bytes
    value: bytes
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _decode(headers: RawHeaders) -> Iterable[tuple[str, str]]:
    return ((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)


_ID_NAMES = frozenset({core.REQUEST_ID_HEADER_BYTES.lower()})


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id, raw = core.accept_request_id_bytes(_header(scope, core.REQUEST_ID_HEADER_BYTES))
        header = (core.REQUEST_ID_HEADER_BYTES, raw)

        token = core.request_id_var.set(request_id)
        try:
            # an id the app set itself is replaced, as aiohttp's and Django's adapters do
            await self.app(scope, receive, _sending_headers(send, _ID_NAMES, (header,)))
        finally:
            # The server may run the next request of a keep-alive connection in the same context.
            core.request_id_var.reset(token)


class _Writes:
    """A middleware that writes lines (access lines, panics, dumps) to the sink log_output
    names."""

    def __init__(self, app: ASGIApp, log_output: str = "stdout") -> None:
        self.app = app
        self._write = sink.open_sink(log_output).write


class LoggerMiddleware(_Writes):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = perf_counter()
        status = 500  # what the server answers if the app raises before starting a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == _START:
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            client = scope.get("client")
            self._write(
                core.access_line(
                    client[0] if client else None,
                    scope["method"],
                    scope["path"],
                    status,
                    perf_counter() - started,
                    core.current_request_id(),
                )
            )


class RecoveryMiddleware(_Writes):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == _START:
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started:
                # Status and headers are on the wire: the response is not rewritten. The server
                # logs the exception (once) and drops the connection.
                raise
            request_id = core.request_id_var.get()
            self._write(core.panic_entry(exc, request_id))
            body = core.error_body(request_id)
            await send(
                {
                    "type": _START,
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


class _HeadersMiddleware:
    """Sets a list of response headers: `headers`, unless `_headers` chooses per request."""

    headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._extra = core.as_bytes(self.headers)
        self._names = frozenset(k for k, _ in self._extra)

    def _headers(self, scope: Scope) -> tuple[frozenset[bytes], RawHeaders]:
        return self._names, self._extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        names, extra = self._headers(scope)
        await self.app(scope, receive, _sending_headers(send, names, extra))


class SecureMiddleware(_HeadersMiddleware):
    headers = core.SECURE_HEADERS

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self._https_extra = core.as_bytes(core.SECURE_HEADERS_HTTPS)
        self._https_names = frozenset(k for k, _ in self._https_extra)

    def _headers(self, scope: Scope) -> tuple[frozenset[bytes], RawHeaders]:
        if scope.get("scheme") == "https":
            return self._https_names, self._https_extra
        return self._names, self._extra


class NoCacheMiddleware(_HeadersMiddleware):
    headers = core.nocache_headers()  # for the names; the values are fetched per request

    def _headers(self, scope: Scope) -> tuple[frozenset[bytes], RawHeaders]:
        return self._names, core.nocache_headers_bytes()


class CORSMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._names = frozenset(k for k, _ in core.as_bytes(core.cors_headers("")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        origin = _header(scope, b"origin")
        if origin is None:  # not a cross-origin request: nothing to add
            return await self.app(scope, receive, send)
        origin_text = origin.decode("latin-1")
        if scope["method"] == "OPTIONS":
            request_headers = _header(scope, b"access-control-request-headers")
            headers = core.cors_preflight_headers(
                origin_text, request_headers.decode("latin-1") if request_headers else None
            )
            await send({"type": _START, "status": 204, "headers": core.as_bytes(headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = core.as_bytes(core.cors_headers(origin_text))
        await self.app(scope, receive, _sending_headers(send, self._names, extra))


class DumpMiddleware(_Writes):
    """Captures the body as the app reads it and as it sends it; nothing is read ahead."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_body = core.BodyCapture()
        response_body = core.BodyCapture()
        status: int | None = None
        response_headers: RawHeaders = ()

        async def receive_captured() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.add(message.get("body", b""))
            return message

        async def send_captured(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == _START:
                status, response_headers = message["status"], message.get("headers", ())
            elif message["type"] == "http.response.body":
                response_body.add(message.get("body", b""))
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive_captured, send_captured)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._write(
                core.dump_entry(
                    request_id=core.current_request_id(),
                    request=core.DumpedRequest(
                        method=scope["method"],
                        path=scope["path"],
                        query=scope.get("query_string", b"").decode("latin-1"),
                        headers=_decode(scope["headers"]),
                        body=request_body.data(),
                        size=request_body.size,
                    ),
                    status=status if error is None else None,
                    response_headers=_decode(response_headers),
                    response_body=response_body.data(),
                    response_size=response_body.size,
                    error=error,
                )
            )


class KnownCostMiddleware:
    """Does a known amount of work per HTTP request (spin.burner: `spin:N`'s CPU time or
    `work:N`'s loop), then calls the app: the middleware `harness calibrate` measures."""

    def __init__(self, app: ASGIApp, kind: str, amount: int) -> None:
        self.app = app
        self.kind, self.amount = kind, amount
        self._burn = spin.burner(kind, amount)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._burn()
        await self.app(scope, receive, send)


CLASSES: dict[str, Callable[..., ASGIApp]] = classes_in(sys.modules[__name__])
LOGGING = frozenset({"logger", "recovery", "dump"})


def layers(
    stack: tuple[str, ...], log_output: str
) -> list[tuple[Callable[..., ASGIApp], dict[str, Any]]]:
    """(class, keyword arguments) for each middleware of `stack`, outermost first in the
    canonical order (middleware.stack.layers)."""
    chosen: list[tuple[Callable[..., ASGIApp], dict[str, Any]]] = []
    for name, amount in stack_layers(stack):
        if name in KNOWN:
            chosen.append((KnownCostMiddleware, {"kind": name, "amount": amount}))
        else:
            chosen.append((CLASSES[name], {"log_output": log_output} if name in LOGGING else {}))
    return chosen


def wrap(app: AnyASGIApp, stack: tuple[str, ...], log_output: str) -> ASGIApp:
    """`app` inside the middlewares of `stack`, in ORDER; one not in `stack` is not in the chain."""
    for cls, kwargs in reversed(layers(stack, log_output)):
        app = cls(app, **kwargs)
    return app
