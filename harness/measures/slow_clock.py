"""The server's clock under callgrind, a thousand times slower (libfaketime), so that what the
server does per second of wall time stays out of a count per request.

A server works per second as well as per request: uvicorn's 0.1 s tick, the date header,
gunicorn's heartbeat, a loop's timers. Under callgrind a window of requests lasts seconds, and
longer on a slower or busier machine, so that work carried the machine's speed into the count
(issue 33). Estimating it from an idle window and subtracting it left 0.1% (a tick that falls
while the server is busy costs about half an idle one). Slowed a thousandfold, the server's
clocks (`clock_gettime`, `time`, `gettimeofday`) and its waits (`epoll_wait`, `select`, `poll`,
`nanosleep`) agree with each other, so its timers still work, but a 0.1 s tick comes every 100 s
of wall time: none falls in a window. What libfaketime itself executes (~180 instructions a
clock read) is taken out of each dump by harness.measures.callgrind, by `OBJECT`.
"""

from __future__ import annotations

import glob
import os

from harness.errors import RunError

RATE = 0.001  # fake seconds per wall second
# Debian's and others' places for the library (the `faketime` package's dependency).
LIBRARY_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)
OBJECT = "libfaketime"  # how the library's object is named in a callgrind dump


def find_library() -> str:
    for pattern in LIBRARY_GLOBS:
        for found in sorted(glob.glob(pattern)):
            return found
    raise RunError(
        "libfaketime is not installed (it slows the server's clock under callgrind): "
        "make setup installs Debian's faketime"
    )


def environment() -> tuple[str, ...]:
    """`NAME=value` words for `env`: the library preloaded (before any the user preloads) and
    the clock's rate, counted from the process's start."""
    preload = ":".join(filter(None, (find_library(), os.environ.get("LD_PRELOAD"))))
    return (f"LD_PRELOAD={preload}", f"FAKETIME=+0 x{RATE:g}")
