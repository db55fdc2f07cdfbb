"""The processes of a running server, by psutil: their CPU time, whether they still run, and
their process group signalled. Nothing here knows what a server is."""

from __future__ import annotations

import contextlib
import os
import time

import psutil


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds of one process (all its threads); 0 once it is gone."""
    try:
        times = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def still_running(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of `procs` still running after up to `timeout` seconds. A zombie counts as dead: a
    worker killed together with its master is no child of ours, and init reaps it when it will
    (up to a second later here), which psutil.wait_procs would wait for."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if is_running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.01)


def is_running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
