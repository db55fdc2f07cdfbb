"""The route table every target answers, as constants each framework module serves."""

from __future__ import annotations

HEALTHZ_PATH = "/healthz"
PANIC_PATH = "/panic"
ECHO_PATH = "/echo"

HEALTHZ_BODY = b'{"status":"ok"}'
JSON_TYPE = "application/json"
NOT_FOUND_BODY = b'{"error":"not found"}'


class Panic(RuntimeError):
    """Raised by every target's /panic handler, so that `recovery` has something to catch."""

    def __init__(self) -> None:
        super().__init__("panic: the /panic handler raised on purpose")
