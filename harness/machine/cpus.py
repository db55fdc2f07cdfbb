"""CPU pinning: the server and the load generator on disjoint CPU sets."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuPlan:
    server: tuple[int, ...] | None  # None: not pinned
    load: tuple[int, ...] | None

    @property
    def pinned(self) -> bool:
        return self.server is not None

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned"
        return f"server on CPU {_cpulist(self.server)}, wrk on CPU {_cpulist(self.load)}"


def available_cpus() -> tuple[int, ...]:
    return tuple(sorted(os.sched_getaffinity(0)))


def plan(pin: bool = True, server_cpus: int | None = None) -> CpuPlan:
    """Split the CPUs this process may use: the first `server_cpus` (default: half, at least one)
    for the server, the rest for wrk. With fewer than two CPUs, or without taskset, nothing is
    pinned, since disjoint sets cannot be made."""
    cpus = available_cpus()
    if not pin or len(cpus) < 2 or shutil.which("taskset") is None:
        return CpuPlan(None, None)
    n = server_cpus if server_cpus is not None else max(1, len(cpus) // 2)
    n = min(max(1, n), len(cpus) - 1)
    return CpuPlan(cpus[:n], cpus[n:])


def pinned(command: list[str], cpus: tuple[int, ...] | None) -> list[str]:
    """`command` prefixed with taskset, so the process and every child it forks stay on `cpus`."""
    if cpus is None:
        return command
    return ["taskset", "-c", _cpulist(cpus), *command]


def _cpulist(cpus: tuple[int, ...] | None) -> str:
    return ",".join(str(c) for c in cpus or ())
