"""In-process cost of our request-id middleware against asgi-correlation-id, on raw-asgi.

Calls the ASGI app directly in a loop (no server, no network) with a fake receive/send, and
prints µs per request for: the bare raw-asgi app, ours, and asgi-correlation-id's
CorrelationIdMiddleware, with and without an incoming X-Request-ID.

    .venv/bin/python bench/request_id_vs_correlation_id.py [--requests N] [--repeats R]

Fairness notes, both applied to every variant alike:
- each call gets a fresh scope (asgi-correlation-id writes the id it generates into the request
  headers, which would grow a reused scope by one header per call);
- the fake send restores raw-asgi's module-level start message, because asgi-correlation-id
  appends to the headers of the message it is given, in place, and raw-asgi sends the same dict
  every time (ours copies the message instead).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware

from middleware.asgi import RequestIdMiddleware
from targets import raw_asgi

App = Callable[[Any, Any, Any], Awaitable[None]]

_START = raw_asgi._HEALTHZ_START
_START_HEADERS = list(_START["headers"])
_BASE_HEADERS = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk")]
_BASE_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "scheme": "http",
    "method": "GET",
    "path": "/healthz",
    "raw_path": b"/healthz",
    "query_string": b"",
    "root_path": "",
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    if message["type"] == "http.response.start":
        _START["headers"] = _START_HEADERS  # undo an in-place append (see the module docstring)


async def _loop(app: App, requests: int, incoming_id: bytes | None) -> float:
    headers = [*_BASE_HEADERS, (b"x-request-id", incoming_id)] if incoming_id else _BASE_HEADERS
    base, receive, send = _BASE_SCOPE, _receive, _send
    started = time.perf_counter()
    for _ in range(requests):
        await app({**base, "headers": list(headers)}, receive, send)
    return (time.perf_counter() - started) / requests * 1e6


def measure(app: App, requests: int, repeats: int, incoming_id: bytes | None) -> float:
    """Median over `repeats` runs of µs per request."""

    async def runs() -> list[float]:
        await _loop(app, min(requests, 10_000), incoming_id)  # warm-up
        return [await _loop(app, requests, incoming_id) for _ in range(repeats)]

    return statistics.median(asyncio.run(runs()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    bare_app: Any = raw_asgi.app  # annotated with a plain dict scope; both accept it
    variants: dict[str, App] = {
        "raw-asgi (bare)": bare_app,
        "ours: RequestIdMiddleware": RequestIdMiddleware(bare_app),
        "asgi-correlation-id": CorrelationIdMiddleware(bare_app),
    }
    # A uuid4 hex passes both validators (ours takes any [A-Za-z0-9._-]{1,128}; theirs a UUID).
    cases = {"no incoming id": None, "valid incoming id": uuid.uuid4().hex.encode()}
    print(f"{args.requests} requests x {args.repeats} runs, median, µs per request")
    print(f"{'variant':<28} {'case':<18} {'µs/req':>8} {'added':>8}")
    for case, incoming in cases.items():
        bare = measure(bare_app, args.requests, args.repeats, incoming)
        for name, app in variants.items():
            cost = (
                bare if app is raw_asgi.app else measure(app, args.requests, args.repeats, incoming)
            )
            print(f"{name:<28} {case:<18} {cost:8.3f} {cost - bare:8.3f}")


if __name__ == "__main__":
    main()
