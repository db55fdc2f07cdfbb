"""Shared test helpers. Servers are real (gunicorn, uvicorn worker, aiohttp worker) on loopback."""

from __future__ import annotations

import http.client
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil
import pytest

FRAMEWORK_TARGETS = (
    "raw-wsgi", "flask", "raw-asgi", "starlette", "fastapi", "raw-aiohttp", "aiohttp",
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


@pytest.fixture
def http_request() -> object:
    return request
