"""wrk: find it, run it once, and hand what it prints to harness.load.wrk_output.

The one place that knows wrk's command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import RunError
from harness.load.wrk_output import (
    WrkResult,
    actual_connections,
    parse_wrk_output,
    wrk_seconds,
)
from harness.machine.cpus import pinned
from harness.machine.lifetime import dies_with_us

ENV_WRK = "HARNESS_WRK"


class WrkError(RunError):
    """Something that stops every level, not just one: wrk missing or not executable."""


def resolve_wrk(wrk: str | None = None) -> str:
    """The wrk to run: `wrk` if given, else $HARNESS_WRK, else `wrk` on PATH, as a path.
    WrkError, with one line saying what was looked for, if there is none."""
    candidate = wrk or os.environ.get(ENV_WRK) or "wrk"
    found = shutil.which(candidate)
    if found is None:
        source = "the wrk setting" if wrk else (ENV_WRK if os.environ.get(ENV_WRK) else "PATH")
        raise WrkError(
            f"wrk not found: {candidate!r} (from {source}); install wrk (make setup), or give "
            f"its path (--wrk or ${ENV_WRK})"
        )
    return found


def wrk_version(wrk: str) -> str:
    """wrk's first `-v` line (wrk exits 1 after printing it)."""
    try:
        proc = subprocess.run(
            [wrk, "-v"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


@dataclass(frozen=True, kw_only=True)
class WrkLoad:
    """What one wrk run is asked for: `connections` over `threads` (both at least 1, and no more
    threads than connections, whatever is asked) for `duration` seconds, each request given up
    after `timeout`; `latency`: wrk's percentiles too; `script`: a wrk script sending the
    request, when it is not a plain GET; `env`: what the script reads from wrk's environment
    (harness.load.request.Request.secrets)."""

    connections: int
    threads: int
    duration: float
    timeout: float
    latency: bool = True
    script: str | None = None
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


def wrk_command(url: str, load: WrkLoad, *, wrk: str = "wrk") -> list[str]:
    """wrk's command line for `load` against `url`, as the original script spelled it."""
    command = [
        wrk,
        f"-t{load.threads}",
        f"-d{wrk_seconds(load.duration)}s",
        f"-T{wrk_seconds(load.timeout)}s",
    ]
    if load.latency:
        command.append("--latency")
    if load.script is not None:
        command += ["-s", load.script]  # the request to send, when it is not a plain GET
    return [*command, "-c", str(load.connections), url]


def _error_reason(stdout: str, stderr: str, returncode: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if lines:
        return "wrk: " + "; ".join(lines[:3])
    if returncode < 0:
        return f"wrk was killed by signal {-returncode}"
    if "Usage: wrk" in stdout:
        return "wrk rejected its arguments (it printed its usage)"
    return f"wrk exited with code {returncode}"


def run_wrk(
    url: str, load: WrkLoad, *, wrk: str = "wrk", cpus: tuple[int, ...] | None = None
) -> WrkResult:
    """Run wrk once. wrk's own errors (bad URL, refused connection, c < threads, ...) give a
    failed result with the reason; WrkError if wrk cannot be run at all."""
    connections = max(1, load.connections)
    threads = max(1, min(load.threads, connections))
    duration = load.duration
    _check_runnable(wrk)
    load = dataclasses.replace(load, connections=connections, threads=threads)
    command = pinned(wrk_command(url, load, wrk=wrk), cpus)
    # wrk ends by itself after -d; this bound is for a wrk that hangs.
    limit = wrk_seconds(duration) + wrk_seconds(load.timeout) + 30
    proc = _start(command, load.env)
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return _failed(
            command, url, connections, threads, duration, f"wrk did not finish in {limit}s"
        )
    except BaseException:
        _kill(proc)
        raise
    if proc.returncode != 0:
        reason = _error_reason(stdout, stderr, proc.returncode)
        return _failed(command, url, connections, threads, duration, reason)
    result = parse_wrk_output(
        stdout, command=command, concurrency=connections, duration_s=wrk_seconds(duration)
    )
    # What we asked for is what ran; wrk's banner can only confirm it.
    result.url = result.url or url
    result.threads = threads
    result.connections = actual_connections(connections, threads)
    if result.status == "failed" and stderr.strip():
        result.reason += "; " + _error_reason("", stderr, proc.returncode)
    return result


def _start(command: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """wrk started as `command` says, in its own session, dying with us; WrkError if it cannot
    be. A Ctrl-C held back while it starts is raised here, once it has started (and can be
    stopped by the caller)."""
    # A Ctrl-C landing inside Popen, after the fork, would leave a wrk running that we hold no
    # handle to: hold SIGINT/SIGTERM back until `proc` exists (wrk inherits the mask, harmlessly:
    # we only ever stop it with SIGKILL, and a terminal's Ctrl-C never reaches its session).
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        proc = subprocess.Popen(
            dies_with_us(command, signal.SIGKILL),  # wrk has nothing to save if we are gone
            env={**os.environ, **env} if env else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own group: we stop it ourselves on Ctrl-C rather than have it print a summary.
            start_new_session=True,
        )
    except FileNotFoundError:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise WrkError(f"wrk not found: {command[0]!r}") from None
    except PermissionError:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise WrkError(f"wrk is not executable: {command[0]!r}") from None
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a held Ctrl-C is raised here
    except BaseException:
        _kill(proc)
        raise
    return proc


def counting_script(request_lua: str, count: int, marker: Path) -> str:
    """A wrk script that sends the request (`request_lua`: harness.load.request.Request.lua, or
    nothing for a plain GET) and, at the `count`-th answer, stops sending and creates `marker`.
    wrk's thread stops at once but wrk itself waits out its -d, so the caller watches for the
    marker and ends wrk: the load is exactly `count` answered requests, none left in flight when
    wrk runs one connection (`thread:stop()` comes before the next request is written)."""
    return request_lua + (
        "local answered = 0\n"
        "function response()\n"
        "  answered = answered + 1\n"
        f"  if answered == {count} then\n"
        f"    local done = io.open({_lua_path(marker)}, 'w')\n"
        "    done:close()\n"
        "    wrk.thread:stop()\n"
        "  end\n"
        "end\n"
    )


def _lua_path(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_counted(
    url: str,
    *,
    count: int,
    script: Path,
    marker: Path,
    bound: float,
    wrk: str,
    cpus: tuple[int, ...] | None = None,
    env: Mapping[str, str] | None = None,
) -> WrkResult:
    """wrk on one connection until `count` requests are answered (`script`, a counting_script
    that creates `marker` then, reading `env`), ended there; `bound` seconds at most. The result
    has the count, the wall time and the rate (wrk, ended, prints no latencies); a failed result
    when the count was not reached within the bound."""
    _check_runnable(wrk)
    marker.unlink(missing_ok=True)
    command = pinned([wrk, "-t1", "-c1", f"-d{wrk_seconds(bound)}s", "-s", str(script), url], cpus)
    proc = _start(command, env or {})
    started = time.monotonic()
    try:
        while not marker.exists() and proc.poll() is None:
            time.sleep(0.002)
        elapsed = time.monotonic() - started
        answered = marker.exists()
        if not answered:
            stdout, stderr = proc.communicate(timeout=30)
    finally:
        _kill(proc)
        marker.unlink(missing_ok=True)
    if not answered:
        got = parse_wrk_output(stdout, command=command, concurrency=1)
        reason = (
            _error_reason(stdout, stderr, proc.returncode)
            if proc.returncode
            else (f"{got.requests} of {count} requests answered within {wrk_seconds(bound)}s")
        )
        return _failed(command, url, 1, 1, bound, reason)
    return WrkResult(
        command=command,
        url=url,
        concurrency=1,
        threads=1,
        connections=1,
        duration_s=elapsed,
        requests=count,
        qps=count / elapsed if elapsed > 0 else 0.0,
    )


def _check_runnable(wrk: str) -> None:
    """WrkError unless `wrk` can be run. Said here, not by Popen: behind the setpriv and taskset
    prefixes a missing wrk would only be their exit code, a failed level instead of an error."""
    if shutil.which(wrk) is not None:
        return
    if os.path.exists(wrk) and not os.access(wrk, os.X_OK):
        raise WrkError(f"wrk is not executable: {wrk!r}")
    raise WrkError(f"wrk not found: {wrk!r}")


def _failed(
    command: list[str], url: str, connections: int, threads: int, duration: float, reason: str
) -> WrkResult:
    return WrkResult(
        command=command,
        url=url,
        concurrency=connections,
        threads=threads,
        connections=actual_connections(connections, threads),
        duration_s=0.0,
        status="failed",
        reason=reason,
    )


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
