"""The per-request logic of every middleware, written once; the adapters only move data in and out.

Everything here is plain functions over str/bytes, so that the WSGI, ASGI and aiohttp adapters
produce byte-identical log lines and headers, and so that it can be unit-tested without a server.
Hot-path values (header lists, the time strings) are precomputed or cached per second, because
this project measures what a middleware costs and a careless one would measure our carelessness.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------------------
# Time strings, cached per second: strftime/formatdate cost microseconds, a request here less.


class _PerSecond:
    """`make(second)` recomputed only when the wall-clock second changes. Races between threads
    are harmless: both compute the same value for the same second."""

    __slots__ = ("_make", "_second", "_value")

    def __init__(self, make: Callable[[int], Any]) -> None:
        self._make = make
        self._second = -1
        self._value: Any = None

    def __call__(self) -> Any:
        second = int(time.time())
        if second != self._second:
            self._value = self._make(second)
            self._second = second
        return self._value


log_time: Callable[[], str] = _PerSecond(
    lambda second: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
)

# --------------------------------------------------------------------------------------------------
# request-id

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_WSGI_KEY = "HTTP_X_REQUEST_ID"
REQUEST_ID_HEADER_BYTES = b"x-request-id"
REQUEST_ID_MAX = 128

# fullmatch, not `^...$`: `$` also matches before a trailing newline, which is exactly the value
# that must be refused.
_valid_id = re.compile(r"[A-Za-z0-9._-]{1,128}").fullmatch
_valid_id_bytes = re.compile(rb"[A-Za-z0-9._-]{1,128}").fullmatch

request_id_var: ContextVar[str | None] = ContextVar("mwbench_request_id", default=None)
"""The current request's id, for the other middlewares and for application code."""


def _id_prefix() -> str:
    return os.urandom(8).hex() + "-"


# A random per-process prefix and a counter: unique across workers and restarts (64 random bits)
# and across the requests of one process (the counter), at a tenth of uuid4's cost. The ids are
# for correlating log lines, not secrets, so being sequential within a process is fine. Reset in
# a forked child, so workers forked from a preloaded master do not share a sequence.
_prefix = _id_prefix()
_counter = itertools.count(1)


def _after_fork() -> None:
    global _prefix, _counter
    _prefix = _id_prefix()
    _counter = itertools.count(1)


os.register_at_fork(after_in_child=_after_fork)


def new_request_id() -> str:
    return f"{_prefix}{next(_counter):x}"


def is_valid_request_id(value: str) -> bool:
    return _valid_id(value) is not None


def accept_request_id(value: str | None) -> str:
    """The incoming id if it is acceptable, else a fresh one."""
    if value and _valid_id(value) is not None:
        return value
    return new_request_id()


def accept_request_id_bytes(value: bytes | None) -> tuple[str, bytes]:
    """As `accept_request_id` for a raw ASGI header value; also returns the id as bytes, so the
    adapter can echo it without encoding it again."""
    if value and _valid_id_bytes(value) is not None:
        return value.decode("ascii"), value
    fresh = new_request_id()
    return fresh, fresh.encode("ascii")


def current_request_id() -> str:
    """The id for log lines: `-` when the request-id middleware is not in the stack."""
    return request_id_var.get() or "-"


# --------------------------------------------------------------------------------------------------
# logger: one access-log line per request.


class _Escapes(dict[int, str]):
    """str.translate's table: what str.isprintable() refuses becomes \\xNN, \\uNNNN or
    \\UNNNNNNNN: C0, DEL and C1 controls, the line and paragraph separators some viewers break
    lines on, format characters that reorder or hide text (U+202E, U+200B), other spaces. The
    rest is left as it is (LookupError), and nothing is cached: a client choosing the characters
    must not grow the table."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char.isprintable():
            raise LookupError(code)
        if code < 0x100:
            return f"\\x{code:02x}"
        return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_CONTROLS = _Escapes()
# in a quoted field `"` and `\` are escaped too, so that it can be undone
_QUOTED = _Escapes({ord("\\"): "\\\\", ord('"'): '\\"'})
# A field written without quotes: a client's address (uvicorn takes it from X-Forwarded-For
# when the peer is 127.0.0.1, so a client chooses it) is quoted unless it is one of these.
_BARE_FIELD = re.compile(r"[0-9A-Za-z.:%_\[\]-]+")


def escape(text: str) -> str:
    """`text` safe inside a double-quoted log field: one line, no terminal escapes."""
    # The fast path is three C-level scans; almost every path takes it.
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return text.translate(_QUOTED)


def escape_text(text: str) -> str:
    """Free text (a traceback line): controls escaped, quotes left alone."""
    return text if text.isprintable() else text.translate(_CONTROLS)


def bare_field(text: str) -> str:
    """`text` as an unquoted field if it has nothing that could end it, else quoted, escaped."""
    return text if _BARE_FIELD.fullmatch(text) else f'"{escape(text)}"'


def access_line(
    client: str | None,
    method: str,
    path: str,
    status: int | str,
    latency: float,
    request_id: str,
) -> str:
    """One access-log line. `latency` in seconds; `request_id` already validated (or `-`)."""
    return (
        f"{log_time()} access client={bare_field(client) if client else '-'} "
        f"method={escape(method)} "
        f'path="{escape(path)}" status={status} latency_ms={latency * 1000.0:.3f} '
        f"request_id={request_id}\n"
    )


def wsgi_path(path_info: str) -> str:
    """PATH_INFO is the request's bytes decoded as latin-1 (PEP 3333); ASGI and aiohttp decode
    UTF-8. Redecode non-ASCII paths so that every adapter logs the same text."""
    if path_info.isascii():
        return path_info
    return path_info.encode("latin-1").decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------------
# recovery

ERROR_MESSAGE = "internal server error"
ERROR_STATUS_WSGI = "500 Internal Server Error"


def error_body(request_id: str | None) -> bytes:
    """The 500 body. The exception itself stays in the log: its text may hold internals."""
    return json.dumps(
        {"error": ERROR_MESSAGE, "request_id": request_id}, separators=(",", ":")
    ).encode()


def panic_entry(exc: BaseException, request_id: str | None) -> str:
    """The log entry for a recovered exception: one header line, then the traceback, each line
    indented so that no line of it can pass for an access line."""
    header = (
        f"{log_time()} panic request_id={request_id or '-'} "
        f'error="{escape(type(exc).__name__)}: {escape(str(exc))}"\n'
    )
    lines = "".join(traceback.format_exception(exc)).splitlines()
    return header + "".join(f"    {escape_text(line)}\n" for line in lines)


# --------------------------------------------------------------------------------------------------
# secure, nocache, cors: response headers, precomputed.

SECURE_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-XSS-Protection", "1; mode=block"),
)
HSTS_HEADER = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
SECURE_HEADERS_HTTPS = (*SECURE_HEADERS, HSTS_HEADER)

NOCACHE_EXPIRES = "Thu, 01 Jan 1970 00:00:00 GMT"
NOCACHE_CACHE_CONTROL = "no-cache, no-store, max-age=0, must-revalidate"


def _nocache(second: int) -> tuple[tuple[str, str], ...]:
    return (
        ("Cache-Control", NOCACHE_CACHE_CONTROL),
        ("Expires", NOCACHE_EXPIRES),
        ("Last-Modified", email.utils.formatdate(second, usegmt=True)),
    )


nocache_headers: Callable[[], tuple[tuple[str, str], ...]] = _PerSecond(_nocache)
nocache_headers_bytes: Callable[[], tuple[tuple[bytes, bytes], ...]] = _PerSecond(
    lambda second: tuple((k.lower().encode(), v.encode()) for k, v in _nocache(second))
)

CORS_MAX_AGE = "43200"  # 12 h, gin-contrib/cors' default
CORS_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
# Lets a browser script read the id it will quote in a bug report.
CORS_EXPOSE = REQUEST_ID_HEADER


def cors_headers(origin: str) -> list[tuple[str, str]]:
    """For a request with `Origin`. Every origin is allowed, so with credentials the origin is
    echoed (a `*` is not valid with credentials) and `Vary: Origin` keeps caches honest."""
    return [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Max-Age", CORS_MAX_AGE),
        ("Access-Control-Expose-Headers", CORS_EXPOSE),
        ("Vary", "Origin"),
    ]


def cors_preflight_headers(origin: str, request_headers: str | None) -> list[tuple[str, str]]:
    """The 204 answer to `OPTIONS` with `Origin`: the methods, and the headers the browser asked
    for (already a parsed header value, so it cannot carry CR/LF)."""
    headers = [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", CORS_METHODS),
        ("Access-Control-Max-Age", CORS_MAX_AGE),
        ("Vary", "Origin"),
    ]
    if request_headers:
        headers.append(("Access-Control-Allow-Headers", request_headers))
    return headers


def as_bytes(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """ASGI form: lower-case names, latin-1 bytes (header values are latin-1 on the wire)."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def lower_names(headers: Iterable[tuple[str, Any]]) -> frozenset[str]:
    return frozenset(k.lower() for k, _ in headers)


def added_headers(
    name: str, request_id: str, origin: str | None = None
) -> tuple[tuple[str, str], ...]:
    """What middleware `name` adds to the answer to a plain HTTP `GET` that carried
    `request_id` (and `origin`, if given), as it sends them: for the checks of an answer. cors
    adds its own only to a request with an Origin; the others, and an unknown name, nothing."""
    if name == "request-id":
        return ((REQUEST_ID_HEADER, request_id),)
    if name == "secure":
        return SECURE_HEADERS  # over HTTP: no HSTS
    if name == "nocache":
        return nocache_headers()
    if name == "cors" and origin is not None:
        return tuple(cors_headers(origin))
    return ()


# --------------------------------------------------------------------------------------------------
# dump: gin-dump's pretty, key-sorted JSON of both sides of the exchange.

DUMP_BODY_CAP = 4096
REDACTED = "[redacted]"
REDACT = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
INVALID_ID = "[invalid]"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower()


def dump_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names (every adapter agrees), repeated headers joined, secrets redacted, and an
    unacceptable incoming X-Request-ID withheld: an invalid id is never logged, not even here."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in REDACT:
            value = REDACTED
        elif key == _REQUEST_ID_KEY and _valid_id(value) is None:
            value = INVALID_ID
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def wsgi_request_headers(environ: dict[str, Any]) -> Iterable[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-"), value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            yield key.replace("_", "-"), value


def dump_body(data: bytes, size: int) -> dict[str, Any]:
    """`data` is the start of a body of `size` bytes (all of it, or at least DUMP_BODY_CAP).
    JSON is re-emitted as JSON (to be pretty-printed with the rest); anything else, or a capped
    body, as text with undecodable bytes shown as \\xNN, which json.dumps escapes further: the
    log never gets raw bytes."""
    shown: dict[str, Any] = {"bytes": size}
    if size == 0:
        shown["body"] = None
        return shown
    if size > DUMP_BODY_CAP or size > len(data):
        shown["truncated"] = True
        shown["body"] = data[:DUMP_BODY_CAP].decode("utf-8", "backslashreplace")
        return shown
    try:
        shown["body"] = json.loads(data)
    except ValueError:  # UnicodeDecodeError included
        shown["body"] = data.decode("utf-8", "backslashreplace")
    return shown


class BodyCapture:
    """Keeps the first DUMP_BODY_CAP bytes of a body that passes by in chunks, and its size."""

    __slots__ = ("chunks", "kept", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.kept = 0
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.kept < DUMP_BODY_CAP and chunk:
            part = chunk[: DUMP_BODY_CAP - self.kept]
            self.chunks.append(part)
            self.kept += len(part)

    def data(self) -> bytes:
        return b"".join(self.chunks)


# Not frozen: one is built on every dumped request, and a frozen dataclass sets each field
# through object.__setattr__ (0.91 against 0.38 µs a construction here).
@dataclass(kw_only=True, slots=True)
class DumpedRequest:
    """The request as a dump entry shows it: `body` is the start of a body of `size` bytes (all
    of it, or at least DUMP_BODY_CAP)."""

    method: str
    path: str
    query: str
    headers: Iterable[tuple[str, str]]
    body: bytes
    size: int


def dump_entry(
    *,
    request_id: str,
    request: DumpedRequest,
    status: int | None,
    response_headers: Iterable[tuple[str, str]],
    response_body: bytes,
    response_size: int,
    error: BaseException | None = None,
) -> str:
    """One dump entry: a header line carrying the request id, then the pretty JSON document.
    `status` None: no response was produced (an exception went past); `error` names it."""
    shown_request: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": dump_headers(request.headers),
        **dump_body(request.body, request.size),
    }
    response: dict[str, Any] | None = None
    if status is not None:
        response = {
            "status": status,
            "headers": dump_headers(response_headers),
            **dump_body(response_body, response_size),
        }
    document: dict[str, Any] = {
        "request_id": request_id,
        "request": shown_request,
        "response": response,
    }
    if error is not None:
        document["error"] = type(error).__name__
    # indent + sort_keys is the point of this middleware (gin-dump's beautifying), and its cost.
    # ensure_ascii keeps every byte of the entry printable ASCII.
    return (
        f"{log_time()} dump request_id={request_id}\n"
        f"{json.dumps(document, indent=2, sort_keys=True)}\n"
    )
