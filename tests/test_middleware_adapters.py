"""In-process tests of the adapters: call chains, order, and the edge cases a live server makes hard
to reach (a response already started, a reused message dict). No network."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

import middleware.aiohttp as mw_aiohttp
import middleware.asgi as mw_asgi
import middleware.django as mw_django
import middleware.wsgi as mw_wsgi
from middleware import core
from middleware.stack import ORDER
from targets import aiohttp_app, fastapi_app, flask_app, raw_asgi, raw_wsgi, starlette_app


@pytest.fixture
def log(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "mw.log"
    return f"file:{path}", path


def _chain(app: Any) -> list[str]:
    names = []
    while hasattr(app, "app"):
        names.append(type(app).__name__)
        app = app.app
    return names


# ---------------------------------------------------------------------------------------------
# order and the call chain


@pytest.mark.parametrize("module", [mw_wsgi, mw_asgi])
def test_empty_stack_is_the_bare_app(module: Any) -> None:
    def app() -> None: ...

    assert module.wrap(app, (), "null") is app


@pytest.mark.parametrize("module", [mw_wsgi, mw_asgi])
def test_order_is_canonical_and_disabled_ones_are_absent(module: Any) -> None:
    def app() -> None: ...

    wrapped = module.wrap(app, ("dump", "secure", "request-id"), "null")
    assert _chain(wrapped) == ["RequestIdMiddleware", "SecureMiddleware", "DumpMiddleware"]
    full = module.wrap(app, tuple(reversed(ORDER)), "null")
    assert len(_chain(full)) == len(ORDER)
    assert _chain(full)[0] == "RequestIdMiddleware" and _chain(full)[-1] == "DumpMiddleware"


@pytest.mark.parametrize("module", [mw_wsgi, mw_asgi, mw_aiohttp, mw_django])
def test_unknown_name_is_refused(module: Any) -> None:
    with pytest.raises(ValueError, match="request-id"):
        if module is mw_aiohttp:
            module.middlewares(("bogus",), "null")
        elif module is mw_django:
            module.settings_for(("bogus",), "null")
        else:
            module.wrap(lambda: None, ("bogus",), "null")


def test_aiohttp_list_is_in_order() -> None:
    names = [m.__name__ for m in mw_aiohttp.middlewares(("dump", "logger", "cors"), "null")]
    assert names == ["logger_middleware", "cors_middleware", "dump_middleware"]
    assert mw_aiohttp.middlewares((), "null") == []

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    assert mw_aiohttp.wrap_handler(handler, (), "null") is handler


@pytest.mark.parametrize("module", [starlette_app, fastapi_app], ids=["starlette", "fastapi"])
def test_starlette_gets_the_classes_through_its_own_list(module: Any) -> None:
    app = module.create_app(("dump", "request-id"), "null")
    assert [m.cls for m in app.user_middleware] == [
        mw_asgi.RequestIdMiddleware,
        mw_asgi.DumpMiddleware,
    ]
    assert module.create_app((), "null").user_middleware == []


def test_flask_recovery_is_an_error_handler_and_the_rest_wrap_wsgi_app() -> None:
    app = flask_app.create_app(("request-id", "recovery", "secure"), "null")
    assert Exception in app.error_handler_spec[None][None]
    assert _chain(app.wsgi_app) == ["RequestIdMiddleware", "SecureMiddleware"]
    bare = flask_app.create_app((), "null")
    assert not bare.error_handler_spec[None][None]
    assert not hasattr(bare.wsgi_app, "app")


# ---------------------------------------------------------------------------------------------
# WSGI


class StartResponse:
    """Like gunicorn's: a second call with exc_info re-raises once the headers are sent."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info and self.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, headers
        return lambda data: None


def _environ(path: str = "/healthz", method: str = "GET", **extra: Any) -> dict[str, Any]:
    import io

    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        **extra,
    }


def _run_wsgi(app: Any, environ: dict[str, Any]) -> tuple[StartResponse, bytes]:
    start = StartResponse()
    result = app(environ, start)
    chunks = []
    try:
        for chunk in result:
            start.headers_sent = True
            chunks.append(chunk)
    finally:
        if hasattr(result, "close"):
            result.close()
    return start, b"".join(chunks)


def test_wsgi_all_on_healthz(log: tuple[str, Path]) -> None:
    spec, path = log
    app = mw_wsgi.wrap(raw_wsgi.app, ORDER, spec)
    start, body = _run_wsgi(app, _environ(HTTP_X_REQUEST_ID="abc"))
    headers = dict(start.headers)
    assert start.status == "200 OK" and body == b'{"status":"ok"}'
    assert headers["X-Request-ID"] == "abc"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Last-Modified" in headers
    text = path.read_text()
    assert text.count(" access ") == 1 and text.count(" dump request_id=abc") == 1


def test_wsgi_headers_are_replaced_not_duplicated() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(
            "200 OK", [("x-frame-options", "SAMEORIGIN"), ("Cache-Control", "max-age=60")]
        )
        return [b""]

    start, _ = _run_wsgi(mw_wsgi.wrap(app, ("secure", "nocache"), "null"), _environ())
    names = [k.lower() for k, _ in start.headers]
    assert names.count("x-frame-options") == 1 and names.count("cache-control") == 1
    assert dict(start.headers)["X-Frame-Options"] == "DENY"


def test_wsgi_request_id_replaces_an_id_the_app_set() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("x-request-id", "the-app-s"), ("Content-Type", "text/plain")])
        return [b""]

    wrapped = mw_wsgi.wrap(app, ("request-id",), "null")
    start, _ = _run_wsgi(wrapped, _environ(HTTP_X_REQUEST_ID="r1"))
    ids = [v for k, v in start.headers if k.lower() == "x-request-id"]
    assert ids == ["r1"] and ("Content-Type", "text/plain") in start.headers


def test_wsgi_recovery_before_and_after_the_response_started(log: tuple[str, Path]) -> None:
    spec, path = log

    def fails_late(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first"
        raise RuntimeError("late")

    def fails_first(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise RuntimeError("before any byte")
        yield b""  # pragma: no cover

    app = mw_wsgi.wrap(fails_first, ("request-id", "recovery"), spec)
    start, body = _run_wsgi(app, _environ(HTTP_X_REQUEST_ID="r1"))
    assert start.status.startswith("500")
    assert json.loads(body) == {"error": core.ERROR_MESSAGE, "request_id": "r1"}
    assert path.read_text().count("Traceback") == 1

    app = mw_wsgi.wrap(fails_late, ("recovery",), spec)
    with pytest.raises(RuntimeError, match="late"):
        _run_wsgi(app, _environ())  # already started: re-raised, the server drops it
    assert path.read_text().count("Traceback") == 1  # and not logged by us a second time


def test_wsgi_logger_logs_at_close_for_a_lazy_body(log: tuple[str, Path]) -> None:
    spec, path = log

    def lazy(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("201 Created", [])
        return iter([b"a", b"b"])

    app = mw_wsgi.wrap(lazy, ("request-id", "logger", "dump"), spec)
    start = StartResponse()
    result = app(_environ(HTTP_X_REQUEST_ID="lazy-1"), start)
    assert path.read_text() == "" if path.exists() else True
    assert b"".join(result) == b"ab"
    result.close()  # type: ignore[attr-defined]
    text = path.read_text()
    assert "status=201" in text and "request_id=lazy-1" in text
    assert '"bytes": 2' in text


def test_wsgi_cors_preflight_does_not_reach_the_app() -> None:
    app = mw_wsgi.wrap(raw_wsgi.app, ("cors",), "null")
    environ = _environ(method="OPTIONS", HTTP_ORIGIN="https://a.example")
    start, body = _run_wsgi(app, environ)
    assert start.status == "204 No Content" and body == b""
    assert dict(start.headers)["Access-Control-Allow-Origin"] == "https://a.example"


def test_wsgi_dump_gives_the_app_the_body_it_read(log: tuple[str, Path]) -> None:
    import io

    spec, path = log
    payload = b'{"k": [1, 2]}'
    environ = _environ(
        "/echo", "POST", CONTENT_LENGTH=str(len(payload)), **{"wsgi.input": io.BytesIO(payload)}
    )
    _, body = _run_wsgi(mw_wsgi.wrap(raw_wsgi.app, ("dump",), spec), environ)
    assert body == payload
    assert '"k": [\n' in path.read_text()


# ---------------------------------------------------------------------------------------------
# ASGI


def _scope(path: str = "/healthz", method: str = "GET", headers: Any = ()) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": list(headers),
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
    }


def _run_asgi(app: Any, scope: dict[str, Any], body: bytes = b"") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_never_mutates_the_apps_messages() -> None:
    before = list(raw_asgi._HEALTHZ_START["headers"])
    app = mw_asgi.wrap(raw_asgi.app, ORDER, "null")
    for _ in range(3):
        sent = _run_asgi(app, _scope(headers=[(b"origin", b"https://a.example")]))
    assert raw_asgi._HEALTHZ_START["headers"] == before
    names = [k for k, _ in sent[0]["headers"]]
    assert len(names) == len(set(names))  # nothing doubled up across requests


def test_asgi_all_on_healthz(log: tuple[str, Path]) -> None:
    spec, path = log
    app = mw_asgi.wrap(raw_asgi.app, ORDER, spec)
    sent = _run_asgi(app, _scope(headers=[(b"x-request-id", b"abc")]))
    headers = dict(sent[0]["headers"])
    assert sent[1]["body"] == b'{"status":"ok"}'
    assert headers[b"x-request-id"] == b"abc"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"expires"] == core.NOCACHE_EXPIRES.encode()
    text = path.read_text()
    assert text.count(" access ") == 1 and "request_id=abc" in text


def test_asgi_request_id_replaces_an_id_the_app_set() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"x-request-id", b"the-app-s"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    wrapped = mw_asgi.wrap(app, ("request-id",), "null")
    sent = _run_asgi(wrapped, _scope(headers=[(b"x-request-id", b"r1")]))
    ids = [v for k, v in sent[0]["headers"] if k == b"x-request-id"]
    assert ids == [b"r1"] and (b"content-type", b"text/plain") in sent[0]["headers"]


def test_asgi_recovery_before_and_after_the_response_started(log: tuple[str, Path]) -> None:
    spec, path = log

    async def fails_first(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("before")

    async def fails_late(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("late")

    sent = _run_asgi(mw_asgi.wrap(fails_first, ("request-id", "recovery"), spec), _scope())
    assert sent[0]["status"] == 500
    assert (
        json.loads(sent[1]["body"])["request_id"]
        == dict(sent[0]["headers"])[b"x-request-id"].decode()
    )
    assert path.read_text().count("Traceback") == 1

    with pytest.raises(RuntimeError, match="late"):
        _run_asgi(mw_asgi.wrap(fails_late, ("recovery",), spec), _scope())
    assert path.read_text().count("Traceback") == 1


def test_asgi_request_id_is_reset_after_the_request() -> None:
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(core.request_id_var.get())
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b""})

    async def two_requests() -> None:
        wrapped = mw_asgi.wrap(app, ("request-id",), "null")

        async def send(message: Any) -> None: ...

        async def receive() -> Any: ...

        await wrapped(_scope(), receive, send)
        assert core.request_id_var.get() is None

    asyncio.run(two_requests())
    assert seen[0] and core.is_valid_request_id(seen[0])


@pytest.mark.parametrize("as_list", [True, False], ids=["list-body", "iterable-body"])
def test_wsgi_request_id_is_reset_once_the_response_is_closed(as_list: bool) -> None:
    seen = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        body = [b"ok"]
        return body if as_list else iter(body)

    def logged(environ: Any, start_response: Any) -> Iterable[bytes]:
        result = app(environ, start_response)
        seen.append(core.current_request_id())
        return result

    wrapped = mw_wsgi.wrap(logged, ("request-id",), "null")
    result = wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda *a: None)
    assert core.is_valid_request_id(seen[0])
    if not as_list:
        assert core.current_request_id() == seen[0]  # still set while the body is sent
        result.close()  # type: ignore[attr-defined]
    assert core.current_request_id() == "-"


def test_asgi_passes_lifespan_through() -> None:
    app = mw_asgi.wrap(raw_asgi.app, ORDER, "null")
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Any] = []

    async def receive() -> Any:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    async def run() -> None:
        await app({"type": "lifespan"}, receive, send)

    asyncio.run(run())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_asgi_dump_captures_the_body_the_app_reads(log: tuple[str, Path]) -> None:
    spec, path = log
    sent = _run_asgi(
        mw_asgi.wrap(raw_asgi.app, ("dump",), spec), _scope("/echo", "POST"), b'{"b":2,"a":1}'
    )
    assert sent[1]["body"] == b'{"b":2,"a":1}'
    document = json.loads(path.read_text().partition("\n")[2])
    assert document["request"]["body"] == {"a": 1, "b": 2}
    assert document["response"]["body"] == {"a": 1, "b": 2}


# ---------------------------------------------------------------------------------------------
# aiohttp


def test_aiohttp_recovery_does_not_rewrite_a_started_response(log: tuple[str, Path]) -> None:
    spec, path = log

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        raise RuntimeError("late")

    async def run(output_size: int) -> web.StreamResponse:
        writer = mock.Mock(output_size=output_size)
        request = make_mocked_request("GET", "/x", writer=writer)
        wrapped = mw_aiohttp.wrap_handler(handler, ("request-id", "recovery"), spec)
        return await wrapped(request)

    response = asyncio.run(run(0))
    assert response.status == 500 and response.headers["X-Request-ID"]
    assert path.read_text().count("Traceback") == 1
    with pytest.raises(RuntimeError, match="late"):
        asyncio.run(run(10))
    assert path.read_text().count("Traceback") == 1


def test_aiohttp_http_exceptions_pass_recovery_and_get_headers() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        raise web.HTTPNotFound()

    async def run() -> None:
        request = make_mocked_request("GET", "/missing")
        wrapped = mw_aiohttp.wrap_handler(handler, ORDER, "null")
        await wrapped(request)

    with pytest.raises(web.HTTPNotFound) as caught:
        asyncio.run(run())
    assert caught.value.headers["X-Frame-Options"] == "DENY"
    assert caught.value.headers["X-Request-ID"]


ACCESS_ID = re.compile(r" access .* request_id=(\S+)$", re.M)
CONTROL_IDS = ["ab\rcd", "ab\r\n cd", "ab\x00cd", "ab\ncd"]


def _id_through_aiohttp(sent: str, spec: str) -> str:
    async def run() -> str:
        request = make_mocked_request("GET", "/healthz", headers={"X-Request-ID": sent})
        wrapped = mw_aiohttp.wrap_handler(aiohttp_app.healthz, ("request-id", "logger"), spec)
        response = await wrapped(request)
        return response.headers["X-Request-ID"]

    return asyncio.run(run())


@pytest.mark.parametrize("sent", CONTROL_IDS, ids=["cr", "folded", "nul", "lf"])
@pytest.mark.parametrize("interface", ["wsgi", "asgi", "aiohttp"])
def test_a_request_id_with_control_characters_is_replaced(
    interface: str, sent: str, log: tuple[str, Path]
) -> None:
    # What no server's parser lets through on the wire, reaching each adapter directly: the id
    # is replaced by a fresh valid one, which is what the access line records.
    spec, path = log
    if interface == "wsgi":
        app = mw_wsgi.wrap(raw_wsgi.app, ("request-id", "logger"), spec)
        start, _ = _run_wsgi(app, _environ(HTTP_X_REQUEST_ID=sent))
        echoed = dict(start.headers)["X-Request-ID"]
    elif interface == "asgi":
        app = mw_asgi.wrap(raw_asgi.app, ("request-id", "logger"), spec)
        sent_bytes = sent.encode("latin-1")
        messages = _run_asgi(app, _scope(headers=[(b"x-request-id", sent_bytes)]))
        echoed = dict(messages[0]["headers"])[b"x-request-id"].decode("latin-1")
    else:
        echoed = _id_through_aiohttp(sent, spec)
    assert echoed != sent and core.is_valid_request_id(echoed)
    assert ACCESS_ID.findall(path.read_text()) == [echoed]


def test_hsts_only_on_https() -> None:
    app = mw_wsgi.wrap(raw_wsgi.app, ("secure",), "null")
    start, _ = _run_wsgi(app, _environ(**{"wsgi.url_scheme": "https"}))
    assert "Strict-Transport-Security" in dict(start.headers)
    start, _ = _run_wsgi(app, _environ())
    assert "Strict-Transport-Security" not in dict(start.headers)

    asgi_app = mw_asgi.wrap(raw_asgi.app, ("secure",), "null")
    sent = _run_asgi(asgi_app, {**_scope(), "scheme": "https"})
    assert b"strict-transport-security" in dict(sent[0]["headers"])
    sent = _run_asgi(asgi_app, _scope())
    assert b"strict-transport-security" not in dict(sent[0]["headers"])


# ---------------------------------------------------------------------------------------------
# spin: innermost in every adapter, and it costs what it says in the thread's CPU time


def test_spin_is_innermost_in_every_adapter() -> None:
    def app() -> None: ...

    stack = ("spin:20us", "dump", "request-id")
    assert _chain(mw_wsgi.wrap(app, stack, "null")) == [
        "RequestIdMiddleware", "DumpMiddleware", "KnownCostMiddleware",
    ]  # fmt: skip
    assert _chain(mw_asgi.wrap(app, stack, "null"))[-1] == "KnownCostMiddleware"
    assert mw_wsgi.wrap(app, ("spin:20us",), "null").amount == 20_000  # type: ignore[attr-defined]
    names = [m.__name__ for m in mw_aiohttp.middlewares(stack, "null")]
    assert names == ["request_id_middleware", "dump_middleware", "known_cost_middleware"]
    for module in (starlette_app, fastapi_app):
        app = module.create_app(stack, "null")
        assert [m.cls for m in app.user_middleware][-1] is mw_asgi.KnownCostMiddleware
    flask = flask_app.create_app((*ORDER, "spin:20us"), "null")
    assert _chain(flask.wsgi_app)[-1] == "KnownCostMiddleware"


def _thread_us(run: Any, calls: int) -> float:
    """Thread CPU µs per request, the lowest of three batches; `run(n)` times its own n
    requests (with time.thread_time_ns) and returns the nanoseconds."""
    return min(run(calls) for _ in range(3)) / calls / 1000


def _wsgi_batch(stack: tuple[str, ...]) -> Any:
    app = mw_wsgi.wrap(raw_wsgi.app, stack, "null")

    def many(n: int) -> int:
        started = time.thread_time_ns()
        for _ in range(n):
            _run_wsgi(app, _environ())
        return time.thread_time_ns() - started

    return many


def _asgi_batch(stack: tuple[str, ...]) -> Any:
    app = mw_asgi.wrap(raw_asgi.app, stack, "null")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    async def many(n: int) -> int:
        scopes = [_scope() for _ in range(n)]
        started = time.thread_time_ns()
        for scope in scopes:
            await app(scope, receive, send)
        return time.thread_time_ns() - started

    return lambda n: asyncio.run(many(n))


def _aiohttp_batch(stack: tuple[str, ...]) -> Any:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=b'{"status":"ok"}')

    wrapped = mw_aiohttp.wrap_handler(handler, stack, "null")

    async def many(n: int) -> int:
        requests = [make_mocked_request("GET", "/healthz") for _ in range(n)]
        started = time.thread_time_ns()
        for request in requests:
            await wrapped(request)
        return time.thread_time_ns() - started

    return lambda n: asyncio.run(many(n))


@pytest.mark.parametrize("batch", [_wsgi_batch, _asgi_batch, _aiohttp_batch])
def test_spin_costs_its_time_in_process(batch: Any) -> None:
    calls, us = 100, 200
    with_spin = _thread_us(batch((f"spin:{us}us",)), calls)
    without = _thread_us(batch(()), calls)
    # The spin's busy-wait, plus what any one more layer costs (a few µs at most).
    assert us * 0.97 <= with_spin - without <= us * 1.05 + 5, (with_spin, without)
