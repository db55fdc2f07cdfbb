"""The ceiling: the cheapest HTTP/1.1 keep-alive server asyncio can run (uvloop + httptools).

It exists to measure the load generator. When a target comes within ~20% of this server's QPS,
the run measured wrk, not the target. It is started standalone (no gunicorn), on a socket the
harness has already bound and passes as a file descriptor.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from typing import cast

import httptools
import uvloop

from targets import routes


def _response(status: str, body: bytes, keep_alive: bool = True) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {routes.JSON_TYPE}\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    return head + b"Connection: " + connection + b"\r\n\r\n" + body


_PANIC_BODY = b'{"error":"panic"}'
_CANNED = {
    (b"GET", routes.HEALTHZ_PATH.encode()): _response("200 OK", routes.HEALTHZ_BODY),
    (b"HEAD", routes.HEALTHZ_PATH.encode()): _response("200 OK", routes.HEALTHZ_BODY),
    (b"GET", routes.PANIC_PATH.encode()): _response("500 Internal Server Error", _PANIC_BODY),
}
_NOT_FOUND = _response("404 Not Found", routes.NOT_FOUND_BODY)


class HttpProtocol(asyncio.Protocol):
    __slots__ = ("_body", "_parser", "_transport", "_url")

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check here.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.write(_response("400 Bad Request", b'{"error":"bad request"}', False))
            self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._transport is not None
        method = self._parser.get_method()
        path = self._url.split(b"?", 1)[0]
        keep_alive = self._parser.should_keep_alive()
        if method == b"POST" and path == routes.ECHO_PATH.encode():
            response = _response("200 OK", b"".join(self._body), keep_alive)
        else:
            response = _CANNED.get((method, path), _NOT_FOUND)
            if not keep_alive:
                response = response.replace(b"Connection: keep-alive", b"Connection: close")
        self._transport.write(response)
        if not keep_alive:
            self._transport.close()


async def serve(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    server = await loop.create_server(HttpProtocol, sock=sock, backlog=4096)
    async with server:
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the ceiling server (measures the load generator)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="an already bound, listening socket")
    where.add_argument("--bind", help="HOST:PORT to bind")
    args = parser.parse_args(argv)
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        host, _, port = args.bind.rpartition(":")
        sock = socket.create_server((host.strip("[]"), int(port)), backlog=4096)
    uvloop.run(serve(sock))


if __name__ == "__main__":
    main()
