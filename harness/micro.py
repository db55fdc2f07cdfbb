"""`harness micro`: the in-process cost per request of a middleware set on a framework.

No server and no network: the WSGI callable, the ASGI app or the aiohttp application is called
directly, in a loop, the way its server would call it. A repeat is one timed batch of N requests
(`time.perf_counter_ns` around the whole batch); the sets of a target are interleaved within each
repeat (A B C, then B C A, ...), so a set's overhead over `none` is a paired difference per repeat,
with a median and a Student-t 95% interval (harness.stats). With N in the thousands, the
resolution is far below a microsecond.

What one timed request includes, per interface (the server's own work is excluded: no socket, no
HTTP parsing, no response serialization by the server, no per-request task):

- WSGI (gunicorn's part mimicked): a copy of a prepared environ as gunicorn builds it, the app
  call with a no-op `start_response`, iterating the body, and `close()` (where logger and dump
  write when the body is not a list). An exception is logged as gunicorn's worker logs it.
- ASGI (uvicorn's part mimicked): a fresh scope as uvicorn's httptools protocol builds it, the app
  call with a `receive` that returns the body once and then waits for the response to complete
  (then `http.disconnect`), as uvicorn's does, and a `send` that records only completion. An
  exception is logged (with traceback) as uvicorn logs it, and a 500 sent if nothing was. The
  lifespan protocol is not run (no target has startup work).
- aiohttp: aiohttp's own server code from the parsed request on: a real `RequestHandler` makes
  the `Request` (with a fresh `StreamWriter`) and runs `_handle_request`, i.e. the router and the
  middlewares (`Application._handle`) or the low-level handler, the response's `prepare()` and
  `write_eof()` (which serialize it into a transport that discards the bytes), and the access log
  when one is configured (none by default, as in this project's gunicorn workers).

The loop's own cost is calibrated with the cheapest app of each interface (`empty`): what remains
of `none` above it is the framework's. Log sinks are `null` by default: entries are still
formatted, only not written.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import importlib
import io
import logging
import os
import platform
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.calibrate import TOLERANCE, CheckRow, check_cost
from harness.stats import Estimate, estimate, paired_differences
from middleware import core
from middleware.stack import is_spin, spin_ns, stack_name
from targets.routes import ECHO_PATH, HEALTHZ_BODY, HEALTHZ_PATH, PANIC_PATH
from targets.table import TARGETS, Target, get_target

DEFAULT_REPEAT = 20
DEFAULT_BATCH_S = 0.05  # with --requests auto: one timed batch lasts about this long
MIN_REQUESTS = 10
MAX_REQUESTS = 1_000_000
INTERFACES = ("wsgi", "asgi", "aiohttp")
MICRO_TARGETS = tuple(name for name, t in TARGETS.items() if t.interface in INTERFACES)
EMPTY = "empty"  # the label of the loop calibration: the cheapest app of the interface

INCLUDED = {
    "wsgi": "environ copy, app call with a no-op start_response, body iteration, close()",
    "asgi": "fresh scope, app call with uvicorn-like receive/send (no serialization)",
    "aiohttp": "aiohttp's RequestHandler from the parsed request: Request, router and "
    "middlewares, prepare() and write_eof() into a discarding transport",
}
EXCLUDED = (
    "socket I/O, HTTP parsing, the server's response serialization (WSGI/ASGI), per-request task"
)

_PACKAGES = (
    "mwbench", "flask", "werkzeug", "starlette", "aiohttp", "uvicorn", "gunicorn", "uvloop",
    "multidict", "yarl", "fastapi",
)  # fmt: skip


class MicroError(ValueError):
    """Settings or an app that cannot be measured; one line, said before anything is timed."""


# --------------------------------------------------------------------------------------------------
# The request that is replayed


@dataclass(frozen=True)
class MicroRequest:
    """One request, replayed N times. Header names as a client sends them; the drivers convert
    them to each interface's form (WSGI environ keys, lower-case ASGI bytes, aiohttp's CIMultiDict).
    """

    method: str = "GET"
    path: str = HEALTHZ_PATH
    query: str = ""
    headers: tuple[tuple[str, str], ...] = (("Host", "127.0.0.1:8000"),)  # what wrk sends
    body: bytes = b""
    client: tuple[str, int] = ("127.0.0.1", 40000)
    server: tuple[str, int] = ("127.0.0.1", 8000)
    expect_status: int | None = 200
    expect_body: bytes | None = None

    def with_headers(self, *extra: tuple[str, str]) -> MicroRequest:
        return dataclasses.replace(self, headers=(*self.headers, *extra))

    def describe(self) -> str:
        target = self.path + (f"?{self.query}" if self.query else "")
        return f"{self.method} {target}" + (f" ({len(self.body)} B body)" if self.body else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [list(h) for h in self.headers],
            "body_bytes": len(self.body),
            "expect_status": self.expect_status,
        }


_ECHO_BODY = b'{"hello":"world","n":[1,2,3]}'
ROUTES: dict[str, MicroRequest] = {
    "healthz": MicroRequest(expect_body=HEALTHZ_BODY),
    "panic": MicroRequest(path=PANIC_PATH, expect_status=500),
    "echo": MicroRequest(
        method="POST",
        path=ECHO_PATH,
        headers=(
            ("Host", "127.0.0.1:8000"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(_ECHO_BODY))),
        ),
        body=_ECHO_BODY,
        expect_body=_ECHO_BODY,
    ),
}


@dataclass
class Reply:
    """What one request answered, for the check before timing."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


def check_reply(reply: Reply, request: MicroRequest, stack: tuple[str, ...]) -> list[str]:
    """Problems with an answer: status, body, and the headers the stack's middlewares must add
    (on a 2xx answer; names the project does not know, e.g. a future `spin:20us`, add none)."""
    found = []
    if request.expect_status is not None and reply.status != request.expect_status:
        found.append(f"{request.describe()} answered {reply.status}, not {request.expect_status}")
    if request.expect_body is not None and reply.body != request.expect_body:
        found.append(f"body {reply.body[:60]!r} is not {request.expect_body[:60]!r}")
    if 200 <= reply.status < 300:
        for name in stack:
            for header in core.EXPECTED_HEADERS.get(name, ()):
                if reply.header(header) is None:
                    found.append(f"{name} is in the stack but the answer has no {header}")
    return found


# --------------------------------------------------------------------------------------------------
# Logging the way the servers do, into the chosen sink


class NullStream(io.TextIOBase):
    """A text stream that drops what it is given: a logging handler on it still formats."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


_SERVER_LOGGERS: dict[str, logging.Logger] = {}


def server_logger(log_output: str) -> logging.Logger:
    """A logger (outside logging's registry) for what the server would log per request, e.g. an
    exception's traceback: same sink as the middlewares, formatted as uvicorn's default."""
    found = _SERVER_LOGGERS.get(log_output)
    if found is not None:
        return found
    core.check_log_output(log_output)
    handler: logging.Handler
    if log_output == "null":
        handler = logging.StreamHandler(NullStream())
    elif log_output == "stdout":
        handler = logging.StreamHandler(sys.stdout)
    else:
        path = Path(log_output[len("file:") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, delay=True)  # appends, as the middlewares' sink
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger = logging.Logger(f"mwbench.micro.server.{log_output}", logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    _SERVER_LOGGERS[log_output] = logger
    return logger


# --------------------------------------------------------------------------------------------------
# Drivers: one app, called in-process the way its server calls it


class Driver(ABC):
    """One app under one request. `check()` answers once and returns what it answered;
    `run(n)` answers n times and returns the nanoseconds the batch took."""

    interface: str

    @abstractmethod
    def check(self) -> Reply: ...

    @abstractmethod
    def run(self, n: int) -> int: ...

    def close(self) -> None:
        return None


def _noop_write(data: bytes) -> None:
    return None


def _noop_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return _noop_write


class WsgiDriver(Driver):
    interface = "wsgi"

    def __init__(
        self, app: Callable[..., Any], request: MicroRequest, *, log_output: str = "null"
    ) -> None:
        self.app = app
        self.request = request
        self.error_log = server_logger(log_output)
        self._errors = NullStream()
        self._empty_input = io.BytesIO(b"")
        self.environ = self._environ(request)

    def _environ(self, request: MicroRequest) -> dict[str, Any]:
        # What gunicorn's sync worker puts in the environ (gunicorn/http/wsgi.py).
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": request.path,
            "QUERY_STRING": request.query,
            "RAW_URI": request.path + (f"?{request.query}" if request.query else ""),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": request.server[0],
            "SERVER_PORT": str(request.server[1]),
            "REMOTE_ADDR": request.client[0],
            "REMOTE_PORT": str(request.client[1]),
            "SERVER_SOFTWARE": "gunicorn",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": self._errors,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.input": self._empty_input,
        }
        for name, value in request.headers:
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                key = "HTTP_" + key
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _call(self, start_response: Callable[..., Any], chunks: list[bytes] | None) -> None:
        environ = self.environ.copy()
        if self.request.body:
            environ["wsgi.input"] = io.BytesIO(self.request.body)
        try:
            result = self.app(environ, start_response)
            try:
                for chunk in result:
                    if chunks is not None:
                        chunks.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            # gunicorn's worker: log it, answer 500 (the answer is the server's, not timed here).
            self.error_log.exception("Error handling request %s", environ["RAW_URI"])
            if chunks is not None:
                start_response("500 Internal Server Error", [])

    def check(self) -> Reply:
        reply = Reply(0, [], b"")

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            reply.status, reply.headers = int(status[:3]), list(headers)
            return _noop_write

        chunks: list[bytes] = []
        self._call(start_response, chunks)
        reply.body = b"".join(chunks)
        return reply

    def run(self, n: int) -> int:
        call, start_response = self._call, _noop_start_response
        started = time.perf_counter_ns()
        for _ in range(n):
            call(start_response, None)
        return time.perf_counter_ns() - started


_DISCONNECT = {"type": "http.disconnect"}
_START = "http.response.start"
_BODY = "http.response.body"
_START_500 = {
    "type": _START,
    "status": 500,
    "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"21"),
        (b"connection", b"close"),
    ],
}
_BODY_500 = {"type": _BODY, "body": b"Internal Server Error", "more_body": False}


class _Cycle:
    """One request/response cycle of uvicorn's: `receive` gives the body once, then waits until
    the response is complete and says `http.disconnect`; `send` notes start and completion."""

    __slots__ = (
        "body",
        "chunks",
        "complete",
        "headers",
        "hook",
        "scope",
        "started",
        "status",
        "waiter",
    )

    def __init__(
        self,
        scope: dict[str, Any],
        body: bytes,
        hook: Callable[[dict[str, Any], Mapping[str, Any]], None] | None,
        capture: bool,
    ) -> None:
        self.scope = scope
        self.body: bytes | None = body
        self.hook = hook
        self.started = False
        self.complete = False
        self.waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: list[Any] | None = [] if capture else None
        self.chunks: list[bytes] | None = [] if capture else None

    async def receive(self) -> dict[str, Any]:
        if self.body is not None and not self.complete:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.complete:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return _DISCONNECT

    async def send(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind == _START:
            self.started = True
            self.status = message["status"]
            if self.hook is not None:
                self.hook(self.scope, message)
            if self.headers is not None:
                self.headers.extend(message.get("headers", ()))
        elif kind == _BODY:
            if self.chunks is not None:
                self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_result(None)


class AsgiDriver(Driver):
    """`on_start(scope, message)`, if given, runs at `http.response.start` inside the server's
    `send`, where uvicorn writes its access-log line (for comparing with uvicorn's access log)."""

    interface = "asgi"

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        request: MicroRequest,
        *,
        loop: asyncio.AbstractEventLoop,
        log_output: str = "null",
        on_start: Callable[[dict[str, Any], Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.app = app
        self.request = request
        self.loop = loop
        self.error_log = server_logger(log_output)
        self.on_start = on_start
        self.headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers
        ]
        # What uvicorn's httptools protocol puts in the scope (on_message_begin, on_url, ...).
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": request.server,
            "client": request.client,
            "scheme": "http",
            "root_path": "",
            "method": request.method,
            "path": request.path,
            "raw_path": request.path.encode("ascii"),
            "query_string": request.query.encode("ascii"),
        }

    async def _one(self, capture: bool) -> _Cycle:
        scope = {**self.scope, "headers": list(self.headers), "state": {}}
        cycle = _Cycle(scope, self.request.body, self.on_start, capture)
        try:
            await self.app(scope, cycle.receive, cycle.send)
        except Exception as exc:
            self.error_log.error("Exception in ASGI application\n", exc_info=exc)
            if not cycle.started:
                await cycle.send(_START_500)
                await cycle.send(_BODY_500)
        return cycle

    async def _batch(self, n: int) -> int:
        one = self._one
        started = time.perf_counter_ns()
        for _ in range(n):
            await one(False)
        return time.perf_counter_ns() - started

    def check(self) -> Reply:
        cycle = self.loop.run_until_complete(self._one(True))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in cycle.headers or ()]
        return Reply(cycle.status, headers, b"".join(cycle.chunks or ()))

    def run(self, n: int) -> int:
        return self.loop.run_until_complete(self._batch(n))


class _DiscardingTransport(asyncio.Transport):
    """Where aiohttp's StreamWriter writes: the bytes are dropped (or kept, for the check)."""

    def __init__(self, extra: dict[str, Any]) -> None:
        super().__init__(extra)
        self.kept: list[bytes] | None = None

    def write(self, data: Any) -> None:
        if self.kept is not None:
            self.kept.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class AiohttpDriver(Driver):
    """`app` is a `web.Application` (served as aiohttp's AppRunner serves it) or a low-level
    handler (served by `web.Server`, as raw-aiohttp is). `access_log`: a logger for aiohttp's
    AccessLogger, None (the default, as in this project's gunicorn workers) for none."""

    interface = "aiohttp"

    def __init__(
        self,
        app: Any,
        request: MicroRequest,
        *,
        loop: asyncio.AbstractEventLoop,
        log_output: str = "null",
        access_log: logging.Logger | None = None,
        access_log_format: str | None = None,
    ) -> None:
        from aiohttp import web

        self.request = request
        self.loop = loop
        kwargs: dict[str, Any] = {"access_log": access_log, "logger": server_logger(log_output)}
        if access_log_format is not None:
            kwargs["access_log_format"] = access_log_format

        async def setup() -> Any:
            runner = (
                web.AppRunner(app, **kwargs)
                if isinstance(app, web.Application)
                else web.ServerRunner(web.Server(app, **kwargs))
            )
            await runner.setup()
            return runner

        self.runner: Any = loop.run_until_complete(setup())
        server = self.runner.server
        self.protocol = server()  # the RequestHandler of one keep-alive connection
        self.transport = _DiscardingTransport(
            {"peername": request.client, "sockname": request.server, "sslcontext": None}
        )
        # connection_made() would also start the protocol's read loop; the loop is ours here.
        self.protocol.transport = self.transport
        self.factory = server.request_factory
        self.handler = server.request_handler
        self.message = self._message(request)

    @staticmethod
    def _message(request: MicroRequest) -> Any:
        from aiohttp.http_parser import HttpVersion11, RawRequestMessage
        from multidict import CIMultiDict, CIMultiDictProxy
        from yarl import URL

        headers = CIMultiDictProxy(CIMultiDict(request.headers))
        raw = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers)
        target = request.path + (f"?{request.query}" if request.query else "")
        return RawRequestMessage(
            method=request.method,
            path=target,
            version=HttpVersion11,
            headers=headers,
            raw_headers=raw,
            should_close=False,
            compression=None,
            upgrade=False,
            chunked=False,
            url=URL.build(path=request.path, query_string=request.query),
        )

    def _payload(self) -> Any:
        from aiohttp import streams

        if not self.request.body:
            return streams.EMPTY_PAYLOAD
        payload = streams.StreamReader(self.protocol, 2**16, loop=self.loop)
        payload.feed_data(self.request.body)
        payload.feed_eof()
        return payload

    async def _batch(self, n: int) -> int:
        from aiohttp.http_writer import StreamWriter

        # Locals: attribute lookups on self would be timed as the loop's cost.
        protocol, loop, factory, handler = self.protocol, self.loop, self.factory, self.handler
        message, payload_for = self.message, self._payload
        handle, logging_enabled = protocol._handle_request, protocol._logging_enabled
        task = asyncio.current_task()
        started = time.perf_counter_ns()
        for _ in range(n):
            writer = StreamWriter(protocol, loop)
            request = factory(message, payload_for(), protocol, writer, task)
            await handle(request, loop.time() if logging_enabled else None, handler)
        return time.perf_counter_ns() - started

    def check(self) -> Reply:
        self.transport.kept = []
        try:
            self.loop.run_until_complete(self._batch(1))
            data = b"".join(self.transport.kept)
        finally:
            self.transport.kept = None
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
        return Reply(status, headers, body)

    def run(self, n: int) -> int:
        return self.loop.run_until_complete(self._batch(n))

    def close(self) -> None:
        self.loop.run_until_complete(self.runner.cleanup())


# --------------------------------------------------------------------------------------------------
# Building drivers for targets, and the empty apps that calibrate the loop


@contextlib.contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the servers use (uvloop when installed), closed at the end."""
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return f"{type(loop).__module__}.{type(loop).__name__}"


def make_driver(
    interface: str,
    app: Any,
    request: MicroRequest,
    *,
    loop: asyncio.AbstractEventLoop,
    log_output: str = "null",
) -> Driver:
    if interface == "wsgi":
        return WsgiDriver(app, request, log_output=log_output)
    if interface == "asgi":
        return AsgiDriver(app, request, loop=loop, log_output=log_output)
    if interface == "aiohttp":
        return AiohttpDriver(app, request, loop=loop, log_output=log_output)
    raise MicroError(f"no in-process driver for interface {interface!r}")


def build_app(target: Target, stack: tuple[str, ...], log_output: str) -> Any:
    """The target's app with `stack`, exactly as its server process builds it."""
    module = importlib.import_module(target.module)
    if hasattr(module, "create_app"):
        return module.create_app(stack, log_output)
    return module.create_handler(stack, log_output)


def _empty_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


_EMPTY_START = {"type": _START, "status": 200, "headers": [(b"content-length", b"0")]}
_EMPTY_BODY = {"type": _BODY, "body": b""}


async def _empty_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send(_EMPTY_START)
    await send(_EMPTY_BODY)


async def _empty_aiohttp(request: Any) -> Any:
    from aiohttp import web

    return web.Response()


EMPTY_APPS: dict[str, Any] = {"wsgi": _empty_wsgi, "asgi": _empty_asgi, "aiohttp": _empty_aiohttp}


# --------------------------------------------------------------------------------------------------
# Timing: calibrate N, warm up, interleave the batches


@dataclass
class Series:
    """One app's repeats: µs per request in each timed batch of `requests` requests."""

    label: str
    requests: int
    values_us: list[float] = field(default_factory=list)

    @property
    def estimate(self) -> Estimate:
        return estimate(self.values_us)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "us_per_request": self.estimate.to_dict(),
            "values_us": [round(v, 4) for v in self.values_us],
        }


def calibrate_requests(driver: Driver, batch_s: float) -> int:
    """N such that a batch lasts about `batch_s`: batches grow fourfold until one lasts a fifth
    of it (which also warms the app up)."""
    n = MIN_REQUESTS
    while True:
        ns = driver.run(n)
        if ns >= batch_s * 0.2e9 or n >= MAX_REQUESTS:
            break
        n *= 4
    return max(MIN_REQUESTS, min(MAX_REQUESTS, round(n * batch_s * 1e9 / max(ns, 1))))


def time_drivers(
    drivers: Mapping[str, Driver],
    *,
    repeat: int = DEFAULT_REPEAT,
    requests: int | None = None,
    batch_s: float = DEFAULT_BATCH_S,
) -> dict[str, Series]:
    """Time every driver `repeat` times, interleaved, each repeat in a rotated order (A B C,
    B C A, ...); `requests=None` picks N per driver so a batch lasts about `batch_s`."""
    if repeat < 1:
        raise MicroError("repeat must be at least 1")
    if requests is not None and requests < 1:
        raise MicroError("requests must be at least 1")
    labels = list(drivers)
    series: dict[str, Series] = {}
    for label in labels:
        driver = drivers[label]
        n = requests if requests is not None else calibrate_requests(driver, batch_s)
        driver.run(max(1, n // 5))  # warm-up (again, after calibration: the same N as timed)
        series[label] = Series(label, n)
    for r in range(repeat):
        gc.collect()
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            one = series[label]
            one.values_us.append(drivers[label].run(one.requests) / one.requests / 1000)
    return series


def overhead(values: Sequence[float], reference: Sequence[float]) -> Estimate | None:
    """Paired by repeat: values[i] - reference[i]."""
    diffs = paired_differences(values, reference)
    return estimate(diffs) if diffs else None


# --------------------------------------------------------------------------------------------------
# The report


@dataclass
class SetResult:
    name: str
    stack: tuple[str, ...]
    series: Series
    status: int
    overhead: Estimate | None = None  # against the target's `none`, paired by repeat
    overhead_values_us: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "middlewares": list(self.stack),
            "status": self.status,
            **self.series.to_dict(),
            "overhead_us": self.overhead.to_dict() if self.overhead else None,
            "overhead_values_us": [round(v, 4) for v in self.overhead_values_us],
        }


@dataclass
class TargetResult:
    target: str
    interface: str
    framework: str
    loop: Series  # the empty app: the measuring loop's own cost
    sets: list[SetResult]

    @property
    def none(self) -> SetResult | None:
        return next((s for s in self.sets if not s.stack), None)

    def find(self, stack: tuple[str, ...] | str) -> SetResult | None:
        name = stack if isinstance(stack, str) else stack_name(stack)
        return next((s for s in self.sets if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        none = self.none
        framework = overhead(none.series.values_us, self.loop.values_us) if none else None
        return {
            "target": self.target,
            "interface": self.interface,
            "framework": self.framework,
            "included": INCLUDED[self.interface],
            "loop": {"app": f"empty {self.interface} app", **self.loop.to_dict()},
            "none_minus_loop_us": framework.to_dict() if framework else None,
            "reference": "none",
            "sets": [s.to_dict() for s in self.sets],
        }


@dataclass
class MicroReport:
    targets: list[TargetResult]
    settings: dict[str, Any]
    environment: dict[str, Any]
    wall_s: float = 0.0

    def find(self, target: str, stack: tuple[str, ...] | str) -> SetResult | None:
        for one in self.targets:
            if one.target == target:
                return one.find(stack)
        return None

    def to_dict(self) -> dict[str, Any]:
        checks = spin_checks(self)
        return {
            "kind": "micro",
            "unit": "us_per_request",
            "settings": self.settings,
            "environment": self.environment,
            "excluded": EXCLUDED,
            "targets": [t.to_dict() for t in self.targets],
            **(
                {"spin_checks": [{"set": c.label, **c.check.to_dict()} for c in checks]}
                if checks
                else {}
            ),
            "wall_s": round(self.wall_s, 2),
        }


def spin_checks(report: MicroReport, tolerance: float = TOLERANCE) -> list[CheckRow]:
    """Each measured set with a `spin:N`, against the same set without the spin (`none` for a
    spin alone), paired by repeat: its known cost N against the measured difference, checked as
    `harness calibrate` checks it. A set whose spin-less twin was not measured is not checked."""
    rows = []
    for one in report.targets:
        by_stack = {s.stack: s for s in one.sets}
        for s in one.sets:
            ns = spin_ns(s.stack)
            base = by_stack.get(tuple(name for name in s.stack if not is_spin(name)))
            if ns is None or base is None:
                continue
            label = f"{one.target} {s.name}" + (f" vs {base.name}" if base.stack else "")
            measured = overhead(s.series.values_us, base.series.values_us)
            rows.append(CheckRow(label, "in-process", check_cost(ns / 1000, measured, tolerance)))
    return rows


def environment(loop: asyncio.AbstractEventLoop | None = None) -> dict[str, Any]:
    """Where the numbers were taken, pyperf-style."""
    packages = {}
    for package in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[package] = metadata.version(package)
    clock = time.get_clock_info("perf_counter")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": sorted(os.sched_getaffinity(0)),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "timer": f"perf_counter_ns ({clock.implementation}, resolution {clock.resolution:g} s)",
        "event_loop": loop_name(loop) if loop is not None else None,
        "gc_enabled": gc.isenabled(),
        "packages": packages,
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def check_targets(targets: Sequence[str]) -> list[Target]:
    chosen = []
    for name in targets:
        target = get_target(name)
        if target.interface not in INTERFACES:
            raise MicroError(
                f"{name} has no app to call in-process; valid: {', '.join(MICRO_TARGETS)}"
            )
        chosen.append(target)
    if not chosen:
        raise MicroError(f"no target given; valid: {', '.join(MICRO_TARGETS)}")
    return chosen


def measure_target(
    target: Target,
    stacks: Sequence[tuple[str, ...]],
    *,
    request: MicroRequest,
    loop: asyncio.AbstractEventLoop,
    repeat: int,
    requests: int | None,
    batch_s: float,
    log_output: str,
) -> TargetResult:
    """One target: its empty app and each stack (the first is the reference), checked, then
    timed interleaved."""
    drivers: dict[str, Driver] = {}
    statuses: dict[str, int] = {}
    try:
        drivers[EMPTY] = make_driver(
            target.interface, EMPTY_APPS[target.interface], request, loop=loop
        )
        for stack in stacks:
            name = stack_name(stack)
            try:
                app = build_app(target, stack, log_output)
            except ValueError as exc:
                raise MicroError(f"{target.name} -m {name}: {exc}") from None
            drivers[name] = make_driver(
                target.interface, app, request, loop=loop, log_output=log_output
            )
            reply = drivers[name].check()
            problems = check_reply(reply, request, stack)
            if problems:
                raise MicroError(
                    f"{target.name} -m {name} answers wrongly, not timed: " + "; ".join(problems)
                )
            statuses[name] = reply.status
        series = time_drivers(drivers, repeat=repeat, requests=requests, batch_s=batch_s)
    finally:
        for driver in drivers.values():
            driver.close()
    reference = series[stack_name(stacks[0])]
    results = []
    for stack in stacks:
        name = stack_name(stack)
        one = series[name]
        result = SetResult(name, stack, one, statuses[name])
        if stack != stacks[0]:
            result.overhead_values_us = paired_differences(one.values_us, reference.values_us)
            result.overhead = overhead(one.values_us, reference.values_us)
        results.append(result)
    return TargetResult(target.name, target.interface, target.framework, series[EMPTY], results)


def micro(
    *,
    targets: Sequence[str],
    sets: Sequence[tuple[str, ...]],
    repeat: int = DEFAULT_REPEAT,
    requests: int | None = None,
    batch_s: float = DEFAULT_BATCH_S,
    request: MicroRequest | str = "healthz",
    log_output: str = "null",
    echo: Callable[[str], None] = lambda line: None,
) -> MicroReport:
    """Measure each set of `sets` on each target in-process; `none` is always measured (first)
    as the reference, and the empty app of the interface as the loop's own cost.

    A set is passed to the target's `create_app` as it is, so any stack the middleware package
    builds can be measured. Every app is checked (status, body, its middlewares' headers) before
    it is timed: one that answers wrongly raises MicroError and nothing is timed."""
    chosen = check_targets(targets)
    replay = ROUTES[request] if isinstance(request, str) else request
    core.check_log_output(log_output)
    if repeat < 2:
        raise MicroError("repeat must be at least 2 (an interval needs two values)")
    wanted = [(), *dict.fromkeys(s for s in sets if s)]
    started = time.monotonic()
    results: list[TargetResult] = []
    with event_loop() as loop:
        for target in chosen:
            echo(f"micro: {target.name}: {len(wanted) + 1} apps × {repeat} repeats ...")
            results.append(
                measure_target(
                    target,
                    wanted,
                    request=replay,
                    loop=loop,
                    repeat=repeat,
                    requests=requests,
                    batch_s=batch_s,
                    log_output=log_output,
                )
            )
        env = environment(loop)
    return MicroReport(
        targets=results,
        settings={
            "repeat": repeat,
            "requests": requests if requests is not None else "auto",
            "batch_s": batch_s if requests is None else None,
            "request": replay.to_dict(),
            "log_output": log_output,
            "order": "interleaved, rotated each repeat",
            "sets": [stack_name(s) for s in wanted],
        },
        environment=env,
        wall_s=time.monotonic() - started,
    )
