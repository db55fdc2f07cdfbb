"""ASGI in-process: the app called as uvicorn's httptools protocol calls it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from harness.experiments.micro.driver import Driver, server_logger
from harness.experiments.micro.replay import MicroRequest, Reply

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
        clock = self.clock
        started = clock()
        for _ in range(n):
            await one(False)
        return clock() - started

    def check(self) -> Reply:
        cycle = self.loop.run_until_complete(self._one(True))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in cycle.headers or ()]
        return Reply(cycle.status, headers, b"".join(cycle.chunks or ()))

    def run(self, n: int) -> int:
        return self.loop.run_until_complete(self._batch(n))
