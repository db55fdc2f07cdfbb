"""What wrk prints, parsed: its units, its summary, and the WrkResult of one run.

The one place that knows wrk's output format (harness.load.wrk knows its command line).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harness.errors import UsageError

# wrk prints times with these units (units.c: us ms s, then m h) and counts with k M G.
_TIME_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_METRIC = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+|nan|inf))"
_TIME_RE = re.compile(_NUMBER + r"(us|ms|s|m|h)$", re.IGNORECASE)
_METRIC_RE = re.compile(_NUMBER + r"([kMG]?)$")

# "Running 10s test @ URL": the URL is what follows the first " @ ", if any.
_RUNNING_RE = re.compile(r"^Running (?:.*? @ (.*))?")
_DISTRIBUTION_RE = re.compile("Latency Distribution")
_THREADS_RE = re.compile(r"^\s*(\d+) threads and (\d+) connections")
_LATENCY_RE = re.compile(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)")
_PERCENTILE_RE = re.compile(r"^\s*(50|75|90|99)%\s+(\S+)")
_REQUESTS_RE = re.compile(r"^\s*(\d+) requests in (\S+?),(?: (\S+) read)?")
_BYTES_RE = re.compile(_NUMBER + r"([KMGT]?)B$")
_BINARY = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SOCKET_RE = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.IGNORECASE
)
_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_QPS_RE = re.compile(r"^Requests/sec:\s+(\S+)")


class WrkParseError(UsageError):
    """A value in wrk's output that is not what wrk prints."""


def parse_time_ms(text: str) -> float:
    """`88.39us`, `2.11ms`, `1.24s`, `1.50m`, `1.02h` -> milliseconds."""
    match = _TIME_RE.match(text.strip())
    if not match:
        raise WrkParseError(f"not a wrk time: {text!r}")
    # Rounded: wrk prints at most 2 decimals, so this only removes float noise from scaling.
    return round(float(match.group(1)) * _TIME_MS[match.group(2).lower()], 6)


def parse_metric(text: str) -> float:
    """`178.45k`, `1.20M`, `3335.36` -> a plain number."""
    match = _METRIC_RE.match(text.strip())
    if not match:
        raise WrkParseError(f"not a wrk number: {text!r}")
    return float(match.group(1)) * _METRIC[match.group(2)]


def parse_bytes(text: str) -> float:
    """`12.62MB`, `573.12KB`, `0.00B` (wrk's binary units) -> bytes."""
    match = _BYTES_RE.match(text.strip())
    if not match:
        raise WrkParseError(f"not a wrk byte count: {text!r}")
    return float(match.group(1)) * _BINARY[match.group(2)]


def parse_duration(text: str | float) -> float:
    """A duration option (`5s`, `300s`, `1m`, `500ms`, `1h`, or bare seconds) -> seconds."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        stripped = text.strip()
        try:
            seconds = float(stripped)
        except ValueError:
            try:
                seconds = parse_time_ms(stripped) / 1e3
            except WrkParseError:
                raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 5s, 1m, 1h)") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {text!r}")
    return seconds


def wrk_seconds(seconds: float) -> int:
    """wrk's -d and --timeout take whole seconds (units.c scans an integer), so round up, and
    never 0: `-d0s` would measure nothing."""
    return max(1, math.ceil(seconds - 1e-9))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass
class WrkResult:
    command: list[str]
    url: str
    concurrency: int  # the level asked for (-c)
    threads: int
    connections: int  # really opened: wrk gives each thread connections // threads
    duration_s: float  # as wrk measured it, else as asked
    requests: int = 0
    qps: float = 0.0
    latency_avg_ms: float | None = None
    latency_stdev_ms: float | None = None
    latency_max_ms: float | None = None
    p50_ms: float | None = None
    p75_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    errors_connect: int = 0
    errors_read: int = 0
    errors_write: int = 0
    errors_timeout: int = 0
    non2xx3xx: int = 0
    bytes_read: float | None = None  # what wrk read, headers and bodies (to 2 decimals of its unit)
    status: str = "ok"  # "ok", "failed" (reason says why) or "skipped" (by the sweep)
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # anything a caller wants kept

    @property
    def errors_by_kind(self) -> tuple[tuple[str, int], ...]:
        """wrk's socket errors, in the order wrk prints them."""
        return (
            ("connect", self.errors_connect),
            ("read", self.errors_read),
            ("write", self.errors_write),
            ("timeout", self.errors_timeout),
        )

    @property
    def socket_errors(self) -> int:
        return sum(n for _, n in self.errors_by_kind)

    @property
    def ok(self) -> int:
        return max(0, self.requests - self.non2xx3xx)

    @property
    def attempted(self) -> int:
        return self.requests + self.socket_errors

    @property
    def success_pct(self) -> float:
        # Nothing attempted is 0 %, never NaN; such a level is also marked failed.
        return 100.0 * self.ok / self.attempted if self.attempted else 0.0

    @property
    def is_ok(self) -> bool:
        """Measured the URL: some answers were 2xx/3xx. Peaks and costs use only these."""
        return self.status == "ok"

    @property
    def answered(self) -> bool:
        """wrk completed requests, so its QPS and mean latency are measurements: of the URL, or,
        for a level still `failed` because no answer was 2xx/3xx (every one a 404, say), of the
        error path. Such a level is a row in NAME.dat (success 0.00) and a point on the charts;
        a level with nothing completed has no QPS or latency to write and is neither."""
        return self.requests > 0

    @property
    def littles_law_ratio(self) -> float | None:
        """QPS x mean latency / connections: about 1 for a closed loop like wrk's. Far below 1,
        the connections spent time outside a timed request (reconnects, errors)."""
        if not self.is_ok or not self.latency_avg_ms or not self.connections:
            return None
        return self.qps * self.latency_avg_ms / 1e3 / self.connections

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            ok=self.ok,
            attempted=self.attempted,
            success_pct=round(self.success_pct, 4),
            socket_errors=self.socket_errors,
            littles_law_ratio=_round(self.littles_law_ratio),
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WrkResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def actual_connections(connections: int, threads: int) -> int:
    return (connections // threads) * threads if threads else connections


def _scan(text: str) -> dict[str, Any]:
    """What wrk's summary says, line by line, by the WrkResult field each line fills."""
    found: dict[str, Any] = {"url": "", "threads": 0, "requested": 0, "requests": 0}
    # A percentile line counts only under the "Latency Distribution" heading, which ends at the
    # requests line.
    in_distribution = False
    for line in text.splitlines():
        for pattern, read in _LINES:
            if pattern is _PERCENTILE_RE and not in_distribution:
                continue
            if match := pattern.search(line):
                found.update(read(match))
                if pattern is _DISTRIBUTION_RE or pattern is _REQUESTS_RE:
                    in_distribution = pattern is _DISTRIBUTION_RE
                break  # a line fills one thing, the first of _LINES it matches
    return found


def _latency(match: re.Match[str]) -> dict[str, Any]:
    return {
        f"latency_{name}_ms": _finite(parse_time_ms(value))
        for name, value in zip(("avg", "stdev", "max"), match.groups(), strict=True)
    }


def _requests(match: re.Match[str]) -> dict[str, Any]:
    return {
        "requests": int(match.group(1)),
        "measured": parse_time_ms(match.group(2)) / 1e3,
        "bytes_read": parse_bytes(match.group(3)) if match.group(3) else None,
    }


def _socket_errors(match: re.Match[str]) -> dict[str, Any]:
    return {
        f"errors_{kind}": int(value)
        for kind, value in zip(("connect", "read", "write", "timeout"), match.groups(), strict=True)
    }


# Each line of wrk's summary, by its pattern, and the fields it fills (in the order _scan tries
# them: the first that matches a line reads it).
_LINES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], dict[str, Any]]], ...] = (
    (_RUNNING_RE, lambda match: {"url": (match.group(1) or "").strip()}),
    (_THREADS_RE, lambda match: {"threads": int(match[1]), "requested": int(match[2])}),
    (_DISTRIBUTION_RE, lambda match: {}),
    (_PERCENTILE_RE, lambda match: {f"p{match[1]}_ms": _finite(parse_time_ms(match[2]))}),
    (_LATENCY_RE, _latency),
    (_REQUESTS_RE, _requests),
    (_SOCKET_RE, _socket_errors),
    (_NON2XX_RE, lambda match: {"non2xx3xx": int(match[1])}),
    (_QPS_RE, lambda match: {"qps": _finite(parse_metric(match[1])) or 0.0}),
)


def parse_wrk_output(
    text: str,
    *,
    command: list[str] | None = None,
    concurrency: int | None = None,
    duration_s: float | None = None,
) -> WrkResult:
    """Parse wrk's stdout. Zero requests, or no summary at all, gives a failed result."""
    found = _scan(text)
    measured = found.pop("measured", None)
    requested = found.pop("requested")
    level = concurrency if concurrency is not None else requested
    result = WrkResult(
        command=list(command or []),
        concurrency=level,
        connections=actual_connections(requested or level, found["threads"]),
        duration_s=measured if measured is not None else (duration_s or 0.0),
        **found,
    )
    if measured is None:
        result.status, result.reason = "failed", "wrk printed no summary"
    elif result.requests == 0:
        result.status = "failed"
        result.reason = "0 requests completed" + (
            f" ({result.socket_errors} socket errors)" if result.socket_errors else ""
        )
        # wrk's statistics over zero samples are zeros, not measurements.
        for name in ("latency_avg_ms", "latency_stdev_ms", "latency_max_ms"):
            setattr(result, name, None)
        result.p50_ms = result.p75_ms = result.p90_ms = result.p99_ms = None
    elif result.ok == 0:
        # Every answer was an error page: that measures the error path, not the URL.
        result.status = "failed"
        result.reason = f"no 2xx/3xx responses ({result.non2xx3xx} non-2xx/3xx)"
    elif result.socket_errors:
        # Measured, but not cleanly; a server that stops mid-level leaves exactly this (answers,
        # then read, write or connect errors), so the level says it where NAME.json is read.
        result.reason = f"{result.success_pct:.2f}% success: socket errors {socket_errors(result)}"
    return result


def socket_errors(result: WrkResult) -> str:
    """`16 read, 58438 write`: the kinds that happened."""
    return ", ".join(f"{n} {kind}" for kind, n in result.errors_by_kind if n) or "none"
