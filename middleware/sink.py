"""The log sink of every middleware: opened once per process, one write(2) per entry."""

from __future__ import annotations

import os
from collections.abc import Callable


class Sink:
    """Where log entries go. `write` takes one whole entry (one or more lines, ending in a newline).

    A file or stdout gets one unbuffered write(2) per entry: an O_APPEND write of a whole entry is
    not interleaved with another worker's, and a test can read the line as soon as it is written.
    That is the same cost as a line-buffered file, without the TextIOWrapper layer in between.
    """

    __slots__ = ("spec", "write")

    def __init__(self, spec: str, write: Callable[[str], None]) -> None:
        self.spec = spec
        self.write = write


def _discard(entry: str) -> None:
    """The `null` sink: entries are still formatted (that is the middleware's cost), not written."""


def _fd_writer(fd: int) -> Callable[[str], None]:
    def write(entry: str) -> None:
        data = entry.encode("utf-8", "backslashreplace")
        written = os.write(fd, data)
        while written < len(data):  # a pipe may take less than all of a large dump entry
            written += os.write(fd, data[written:])

    return write


LOG_OUTPUTS = "stdout, null, file:PATH"
_SINKS: dict[str, Sink] = {}


def check_log_output(spec: str) -> str:
    """`spec` if it names a sink, else ValueError listing the valid forms (for CLI validation)."""
    if spec in ("stdout", "null") or (spec.startswith("file:") and len(spec) > len("file:")):
        return spec
    raise ValueError(f"unknown log output {spec!r}; valid: {LOG_OUTPUTS}")


def open_sink(spec: str) -> Sink:
    """The sink for `spec`, opened on first use and shared by every middleware of this process."""
    sink = _SINKS.get(spec)
    if sink is not None:
        return sink
    check_log_output(spec)
    if spec == "null":
        sink = Sink(spec, _discard)
    elif spec == "stdout":
        sink = Sink(spec, _fd_writer(1))
    else:
        path = spec[len("file:") :]
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        sink = Sink(spec, _fd_writer(fd))
    _SINKS[spec] = sink
    return sink
