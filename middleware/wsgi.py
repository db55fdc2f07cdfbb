"""WSGI middlewares (PEP 3333): each a small class wrapping the next app, for raw-wsgi and Flask.

Headers are added by wrapping `start_response`; the access-log and dump entries are written when
the response is complete: at once when the app returns a list (its body is already built), else
when the server calls `close()` on the iterable, as PEP 3333 requires it to.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any

from middleware import core, sink, spin
from middleware.stack import KNOWN, classes_in, layers

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

Headers = list[tuple[str, str]]


class _OnClose:
    """The app's iterable, with `callback` run after the server closes it (the response is sent)."""

    __slots__ = ("_callback", "_iterable")

    def __init__(self, iterable: Iterable[bytes], callback: Callable[[], None]) -> None:
        self._iterable = iterable
        self._callback = callback

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._iterable)

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._callback()


def _replace(headers: Headers, names: frozenset[str], extra: Iterable[tuple[str, str]]) -> Headers:
    """`headers` with `extra` set: a header the app already set is replaced, not duplicated. A new
    list, since the app may hand in a list it reuses."""
    kept = [h for h in headers if h[0].lower() not in names]
    kept.extend(extra)
    return kept


_ID_NAMES = frozenset({core.REQUEST_ID_HEADER.lower()})


class RequestIdMiddleware:
    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = core.accept_request_id(environ.get(core.REQUEST_ID_WSGI_KEY))
        token = core.request_id_var.set(request_id)
        header = (core.REQUEST_ID_HEADER, request_id)

        def start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            # an id the app set itself is replaced, as aiohttp's and Django's adapters do
            return start_response(status, _replace(headers, _ID_NAMES, (header,)), exc_info)

        # Reset only when the response is complete: logger and dump, inside this one, write at
        # close(), after this call has returned. Resetting matters when one thread runs several
        # stacks (harness micro, tests): a stack without request-id must never log a stale id.
        try:
            result = self.app(environ, start)
        except BaseException:
            core.request_id_var.reset(token)
            raise
        if type(result) is list:
            core.request_id_var.reset(token)
            return result
        return _OnClose(result, lambda: core.request_id_var.reset(token))


class _Writes:
    """A middleware that writes lines (access lines, panics, dumps) to the sink log_output
    names."""

    def __init__(self, app: WSGIApplication, log_output: str = "stdout") -> None:
        self.app = app
        self._write = sink.open_sink(log_output).write


class LoggerMiddleware(_Writes):
    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = perf_counter()
        status = "500"  # what the server answers if the app raises before start_response

        def start(line: str, headers: Headers, exc_info: Any = None) -> Any:
            nonlocal status
            status = line[:3]
            return start_response(line, headers, exc_info)

        def log() -> None:
            self._write(
                core.access_line(
                    environ.get("REMOTE_ADDR"),
                    environ.get("REQUEST_METHOD", ""),
                    core.wsgi_path(environ.get("PATH_INFO", "")),
                    status,
                    perf_counter() - started,
                    core.current_request_id(),
                )
            )

        try:
            result = self.app(environ, start)
        except BaseException:
            log()
            raise
        if type(result) is list:
            log()
            return result
        return _OnClose(result, log)


class RecoveryMiddleware(_Writes):
    """An exception becomes the 500 JSON body. Passing `exc_info` to start_response is PEP 3333's
    "already started" check: the server re-raises if the headers are already on the wire, and
    then the response is not rewritten (the server logs it and drops the connection)."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            result = self.app(environ, start_response)
        except Exception:
            return self._recover(start_response)
        if type(result) is list or type(result) is tuple:
            return result  # already built: iterating it cannot raise
        return self._guard(result, start_response)

    def _recover(self, start_response: StartResponse) -> list[bytes]:
        exc_info = sys.exc_info()
        request_id = core.request_id_var.get()
        body = core.error_body(request_id)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(core.ERROR_STATUS_WSGI, headers, exc_info)  # re-raises if started
        assert exc_info[1] is not None
        self._write(core.panic_entry(exc_info[1], request_id))
        return [body]

    def _guard(self, result: Iterable[bytes], start_response: StartResponse) -> Iterator[bytes]:
        """A lazy body can raise while it is iterated; before its first chunk nothing was sent."""
        sent = False
        try:
            for chunk in result:
                sent = True
                yield chunk
        except Exception:
            if sent:
                raise
            yield from self._recover(start_response)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class _HeadersMiddleware:
    """Sets a fixed list of response headers."""

    headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self._names = core.lower_names(self.headers)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        extra = self.headers
        names = self._names

        def start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            return start_response(status, _replace(headers, names, extra), exc_info)

        return self.app(environ, start)


class SecureMiddleware(_HeadersMiddleware):
    headers = core.SECURE_HEADERS

    def __init__(self, app: WSGIApplication) -> None:
        super().__init__(app)
        self._https_names = core.lower_names(core.SECURE_HEADERS_HTTPS)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("wsgi.url_scheme") == "https":
            extra, names = core.SECURE_HEADERS_HTTPS, self._https_names
        else:
            extra, names = core.SECURE_HEADERS, self._names

        def start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            return start_response(status, _replace(headers, names, extra), exc_info)

        return self.app(environ, start)


class NoCacheMiddleware(_HeadersMiddleware):
    headers = core.nocache_headers()  # for the names; the values are fetched per request

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        names = self._names

        def start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            return start_response(
                status, _replace(headers, names, core.nocache_headers()), exc_info
            )

        return self.app(environ, start)


class CORSMiddleware:
    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self._names = core.lower_names(core.cors_headers(""))

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        if origin is None:  # not a cross-origin request: nothing to add
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            request_headers = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
            start_response("204 No Content", core.cors_preflight_headers(origin, request_headers))
            return []
        extra = core.cors_headers(origin)
        names = self._names

        def start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            return start_response(status, _replace(headers, names, extra), exc_info)

        return self.app(environ, start)


class DumpMiddleware(_Writes):
    """Reads the request body up front (and hands the app a copy), as gin-dump does."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_body = _read_body(environ)
        status: int | None = None
        response_headers: Headers = []

        def start(line: str, headers: Headers, exc_info: Any = None) -> Any:
            nonlocal status, response_headers
            status, response_headers = int(line[:3]), headers
            return start_response(line, headers, exc_info)

        def dump(body: bytes, size: int, error: BaseException | None = None) -> None:
            self._write(
                core.dump_entry(
                    request_id=core.current_request_id(),
                    request=core.DumpedRequest(
                        method=environ.get("REQUEST_METHOD", ""),
                        path=core.wsgi_path(environ.get("PATH_INFO", "")),
                        query=environ.get("QUERY_STRING", ""),
                        headers=core.wsgi_request_headers(environ),
                        body=request_body,
                        size=len(request_body),
                    ),
                    status=status if error is None else None,
                    response_headers=response_headers,
                    response_body=body,
                    response_size=size,
                    error=error,
                )
            )

        try:
            result = self.app(environ, start)
        except BaseException as exc:
            dump(b"", 0, exc)
            raise
        if type(result) is list:
            body = b"".join(result)
            dump(body, len(body))
            return result
        capture = core.BodyCapture()
        return _OnClose(_captured(result, capture), lambda: dump(capture.data(), capture.size))


def _captured(result: Iterable[bytes], capture: core.BodyCapture) -> Iterator[bytes]:
    try:
        for chunk in result:
            capture.add(chunk)
            yield chunk
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _read_body(environ: WSGIEnvironment) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        body = stream.read(length)
    elif environ.get("wsgi.input_terminated"):  # chunked: the server marks the end of the body
        body = stream.read()
    else:
        return b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


class KnownCostMiddleware:
    """Does a known amount of work per request (spin.burner: `spin:N`'s CPU time or `work:N`'s
    loop), then calls the app: the middleware `harness calibrate` measures."""

    def __init__(self, app: WSGIApplication, kind: str, amount: int) -> None:
        self.app = app
        self.kind, self.amount = kind, amount
        self._burn = spin.burner(kind, amount)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self._burn()
        return self.app(environ, start_response)


_CLASSES: dict[str, Callable[..., WSGIApplication]] = classes_in(sys.modules[__name__])
_LOGGING = frozenset({"logger", "recovery", "dump"})


def wrap(app: WSGIApplication, stack: tuple[str, ...], log_output: str) -> WSGIApplication:
    """`app` inside the middlewares of `stack`, outermost first in the canonical order whatever
    order `stack` lists (middleware.stack.layers); one not in `stack` is not in the chain at all."""
    for name, amount in reversed(layers(stack)):
        if name in KNOWN:
            assert amount is not None
            app = KnownCostMiddleware(app, name, amount)
            continue
        cls = _CLASSES[name]
        app = cls(app, log_output) if name in _LOGGING else cls(app)
    return app
