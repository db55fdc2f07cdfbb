"""What a server spends: its CPU time over one wrk level, and how many cores it can keep busy.

The second of compare's two costs per request (server CPU time over requests completed) is read
here, over every process of the server: gunicorn's arbiter and workers, granian's supervisor and
worker with its Rust threads (a process's CPU time covers all its threads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psutil

from harness.serving.processes import cpu_seconds
from harness.serving.servers import RunningServer


def cpu_probe(server: RunningServer) -> Callable[[int], Callable[[], dict[str, Any]]]:
    """Server CPU seconds over exactly one wrk level: user + system of every process of the
    server's tree (a supervisor and its workers), each process's times covering all of its
    threads (granian's Rust runtime and blocking threads too); and the share of the processes
    that serve requests (gunicorn's and granian's workers, without their supervisor)."""

    def both() -> tuple[float, float]:
        serving = set(server.worker_pids())
        total = workers = 0.0
        for proc in server.processes():
            spent = cpu_seconds(proc)
            total += spent
            if proc.pid in serving:
                workers += spent
        return total, workers

    def start(concurrency: int) -> Callable[[], dict[str, Any]]:
        before, workers_before = both()

        def finish() -> dict[str, Any]:
            after, workers_after = both()
            return {
                "server_cpu_s": after - before,
                "workers_cpu_s": workers_after - workers_before,
                "server_alive": server.alive(),
            }

        return finish

    return start


def server_cores(server_cpus: tuple[int, ...] | None, workers: int) -> int:
    """How many cores the server can keep busy: one per worker process (the GIL), at most the
    CPUs it is pinned to."""
    available = len(server_cpus) if server_cpus else len(psutil.Process().cpu_affinity() or [0])
    return max(1, min(workers, available))
