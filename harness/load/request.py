"""The request to time: method, path, headers and body, as wrk sends it and as the answer check
sends it first; and the status it must answer.

wrk sends a plain `GET` of the URL by itself; anything else goes in a generated Lua script
(`wrk -s`), so that every request of the run is exactly this one.

A header whose value is a secret (the names the dump middleware redacts: Authorization, Cookie,
X-Api-Key, ...) is kept out of what a run writes: the script reads it from wrk's environment
(`secrets()`), and the record of the request says `[redacted]`. Results are shared (a CI job's
artifacts, a pull request's comment); a token in them would be too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.errors import UsageError
from middleware.core import REDACT, REDACTED
from targets.routes import HEALTHZ_PATH

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# The variable of wrk's environment the script reads the K-th header's secret value from
SECRET_VARIABLE = "MWBENCH_HEADER_{}"


class RequestError(UsageError):
    """A request that cannot be sent as given; the message is one line."""


@dataclass(frozen=True)
class Request:
    method: str = "GET"
    path: str = HEALTHZ_PATH
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    expect_status: int | None = None  # None: any 2xx

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise RequestError(f"unknown method {self.method!r}; valid: {', '.join(METHODS)}")
        if not self.path.startswith("/") or any(c.isspace() for c in self.path):
            raise RequestError(f"a path starts with / and has no spaces: {self.path!r}")
        for name, value in self.headers:
            if not _HEADER_NAME.fullmatch(name) or "\n" in value or "\r" in value:
                raise RequestError(f"not a header: {name!r}: {value!r}")
        if self.expect_status is not None and not 100 <= self.expect_status <= 599:
            raise RequestError(f"not an HTTP status: {self.expect_status}")

    @property
    def plain(self) -> bool:
        """What wrk sends without a script: GET, no headers of ours, no body."""
        return self.method == "GET" and not self.headers and not self.body

    def describe(self) -> str:
        body = f" with a {len(self.body)} B body" if self.body else ""
        headers = f" ({len(self.headers)} header(s))" if self.headers else ""
        return f"{self.method} {self.path}{body}{headers}"

    def status_problem(self, status: int) -> str | None:
        """Why `status` is not the answer expected, or None."""
        if self.expect_status is None:
            return None if 200 <= status < 300 else f"{self.describe()} answered {status}, not 2xx"
        if status != self.expect_status:
            return f"{self.describe()} answered {status}, not {self.expect_status}"
        return None

    def lua(self) -> str:
        """wrk's script for this request: method, body and headers set once, sent every time."""
        lines = [f"wrk.method = {_lua_string(self.method.encode())}"]
        if self.body:
            lines.append(f"wrk.body = {_lua_string(self.body)}")
        for k, (name, value) in enumerate(self.headers):
            key = _lua_string(name.encode())
            if _secret(name):
                text = f"os.getenv({_lua_string(SECRET_VARIABLE.format(k).encode())})"
            else:
                text = _lua_string(value.encode())
            lines.append(f"wrk.headers[{key}] = {text}")
        return "\n".join(lines) + "\n"

    def secrets(self) -> dict[str, str]:
        """What wrk's environment must hold for the script: the secret headers' values."""
        return {
            SECRET_VARIABLE.format(k): value
            for k, (name, value) in enumerate(self.headers)
            if _secret(name)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": [[name, REDACTED if _secret(name) else v] for name, v in self.headers],
            "body_bytes": len(self.body),
            "expect_status": self.expect_status or "2xx",
        }


def _secret(name: str) -> bool:
    return name.lower() in REDACT


def parse_header(text: str) -> tuple[str, str]:
    """`Name: value`, as curl's -H spells it."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise RequestError(f"a header is 'Name: value': {text!r}")
    return name.strip(), value.strip()


def _lua_string(data: bytes) -> str:
    """A Lua string literal of exactly these bytes: printable ASCII as is, the rest escaped."""
    out = []
    for byte in data:
        char = chr(byte)
        if char in '"\\' or not 0x20 <= byte < 0x7F:
            out.append(f"\\{byte:03d}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
