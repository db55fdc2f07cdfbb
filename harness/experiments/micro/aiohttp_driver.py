"""aiohttp in-process: aiohttp's own RequestHandler, from the parsed request on."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from harness.experiments.micro.driver import Driver, server_logger
from harness.experiments.micro.replay import MicroRequest, Reply


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
        clock = self.clock
        started = clock()
        for _ in range(n):
            writer = StreamWriter(protocol, loop)
            request = factory(message, payload_for(), protocol, writer, task)
            await handle(request, loop.time() if logging_enabled else None, handler)
        return clock() - started

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
