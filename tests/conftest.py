"""Shared test helpers. Servers are real (gunicorn, uvicorn worker, aiohttp worker) on loopback."""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil
import pytest

FRAMEWORK_TARGETS = (
    "raw-wsgi", "flask", "raw-asgi", "starlette", "fastapi", "raw-aiohttp", "aiohttp",
    "django", "django-asgi",
)  # fmt: skip
ALL_TARGETS = (*FRAMEWORK_TARGETS, "ceiling")


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(
    url: str,
    method: str = "GET",
    path: str = "/healthz",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> Reply:
    """One request on a fresh connection; the path is sent as given (no quoting)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group: what a server left behind, if anything."""
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return members


def pinned(**load: object) -> dict[str, object]:
    """`serve` and `load` settings on disjoint CPU sets, as the commands plan them: the load's
    options as given."""
    from harness.load.settings import LoadSettings
    from harness.machine.cpus import plan
    from harness.serving.settings import ServeSettings

    cpus = plan()
    return {
        "serve": ServeSettings(cpus=cpus.server),
        "load": LoadSettings(cpus=cpus.load, **load),  # type: ignore[arg-type]
    }


def established(port: int) -> int:
    """Connections a server on `port` has accepted and holds open now: wrk's, while it runs."""
    return sum(
        1
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def listening_addresses(port: int) -> set[str]:
    """The addresses a socket listens on at `port`: what a server really bound, not what it was
    asked to bind."""
    return {
        c.laddr.ip
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
    }


@dataclass
class Trigger:
    """`action` run by a thread as soon as `ready()` holds (a state observed, never a timer);
    `fired` says whether it did before the deadline."""

    ready: Callable[[], bool]
    action: Callable[[], object]
    timeout: float = 60.0
    fired: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Trigger:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.ready():
                self.action()
                self.fired = True
                return
            time.sleep(0.02)

    def cancel(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def when_loaded(port: int, connections: int, action: Callable[[], object]) -> Trigger:
    """`action` once wrk holds `connections` open to the server on `port`: mid-level."""
    return Trigger(lambda: established(port) >= connections, action).start()


@pytest.fixture
def http_request() -> object:
    return request


def assert_names_every_middleware(output: str, unknown: str) -> None:
    """A -m with an unknown name said in one usage error: the name, and every valid choice."""
    from middleware.stack import ORDER

    assert unknown in output
    for name in ("none", "all", *ORDER):
        assert name in output
