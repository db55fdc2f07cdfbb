"""`harness system`: the machine state that changes what a per-request cost measures, and the
settings that make it measurable (like `pyperf system show|tune|reset`).

What matters here is what an idle CPU does. Once a middleware slows the server, wrk's CPU falls
idle between responses, and each response must wake it. Under a hypervisor whose cpuidle driver
is `haltpoll` with `guest_halt_poll_ns=0`, an idle vCPU halts at once, so every wake-up is an
IPI and a VM exit, billed to the server (~12.5 µs on the project's Firecracker VM: calibrate
measured `5.8 µs + 1.22 × known`). With `guest_halt_poll_ns=200000` idle vCPUs poll for 200 µs
before halting, a wake-up needs no IPI, and calibrate measures `0.5 µs + 1.03 × known`. On bare
metal the analogous knob is the cpufreq governor (`performance`); cpuidle states are shown.

Every path is relative to `root` (`/` on a real machine, a fake tree in tests). Reading never
fails: a file that is missing or unreadable is simply absent from the state.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_ROOT = "MWBENCH_SYSFS_ROOT"  # tests point this at a fake tree
CPU_DIR = "sys/devices/system/cpu"
CPUIDLE_DIR = f"{CPU_DIR}/cpuidle"
HALTPOLL_DIR = "sys/module/haltpoll/parameters"
HALT_POLL_NS = "guest_halt_poll_ns"
HALTPOLL_PARAMS = (
    HALT_POLL_NS,
    "guest_halt_poll_grow",
    "guest_halt_poll_grow_start",
    "guest_halt_poll_shrink",
    "guest_halt_poll_allow_shrink",
)
STATE_FILE = "var/tmp/mwbench-system.json"
DEFAULT_HALT_POLL_NS = 200_000  # the kernel's own default
PERFORMANCE = "performance"


def default_root() -> Path:
    """`/`, or the tree named by $MWBENCH_SYSFS_ROOT."""
    return Path(os.environ.get(ENV_ROOT) or "/")


def read_value(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _number(text: str | None) -> int | str | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return text


def cpu_ranges(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> `0-2,5`."""
    runs: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


# --------------------------------------------------------------------------------------------------
# The state


@dataclass(frozen=True)
class IdleState:
    """One cpuidle state of one CPU (cpuN/cpuidle/stateK)."""

    index: int
    name: str
    latency_us: int | None = None  # exit latency
    residency_us: int | None = None  # target residency
    disabled: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.latency_us is not None:
            out["latency_us"] = self.latency_us
        if self.residency_us is not None:
            out["residency_us"] = self.residency_us
        if self.disabled is not None:
            out["disabled"] = self.disabled
        return out

    def describe(self) -> str:
        latency = f" {self.latency_us} µs" if self.latency_us is not None else ""
        return f"{self.name}{latency}{' (disabled)' if self.disabled else ''}"


@dataclass(frozen=True)
class CpuState:
    """What one CPU has of cpufreq and cpuidle; empty where it has neither."""

    cpu: int
    governor: str | None = None  # cpufreq scaling_governor
    available_governors: tuple[str, ...] = ()
    idle_states: tuple[IdleState, ...] = ()

    def settings(self) -> dict[str, Any]:
        """Everything but the CPU number: CPUs with equal settings are shown as one group."""
        out: dict[str, Any] = {}
        if self.governor is not None:
            out["cpufreq_governor"] = self.governor
        if self.available_governors:
            out["cpufreq_available"] = list(self.available_governors)
        if self.idle_states:
            out["idle_states"] = [s.to_dict() for s in self.idle_states]
        return out


@dataclass
class SystemState:
    """What inspect() found under `root`; None / empty for what is not there."""

    root: Path = Path("/")
    cpuidle_driver: str | None = None
    cpuidle_governor: str | None = None
    haltpoll: dict[str, int | str] = field(default_factory=dict)
    cpus: list[CpuState] = field(default_factory=list)

    @property
    def halt_poll_ns(self) -> int | None:
        value = self.haltpoll.get(HALT_POLL_NS)
        return value if isinstance(value, int) else None

    @property
    def halts_on_idle(self) -> bool:
        """An idle CPU halts at once: the haltpoll driver (and governor) without polling."""
        return (
            self.cpuidle_driver == "haltpoll"
            and self.cpuidle_governor in (None, "haltpoll")
            and self.halt_poll_ns == 0
        )

    def groups(self) -> list[tuple[list[int], CpuState]]:
        """(CPUs, the first of them) for each distinct settings, in CPU order."""
        grouped: dict[str, tuple[list[int], CpuState]] = {}
        for cpu in self.cpus:
            key = json.dumps(cpu.settings(), sort_keys=True)
            grouped.setdefault(key, ([], cpu))[0].append(cpu.cpu)
        return list(grouped.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        cpuidle = {"driver": self.cpuidle_driver, "governor": self.cpuidle_governor}
        cpuidle = {k: v for k, v in cpuidle.items() if v is not None}
        if cpuidle:
            out["cpuidle"] = cpuidle
        if self.haltpoll:
            out["haltpoll"] = dict(self.haltpoll)
        groups = [{"cpus": cpu_ranges(cpus), **c.settings()} for cpus, c in self.groups()]
        if groups:
            out["cpus"] = groups
        return out


def _cpu_numbers(root: Path) -> list[int]:
    try:
        names = [p.name for p in (root / CPU_DIR).iterdir()]
    except OSError:
        return []
    return sorted(int(n[3:]) for n in names if re.fullmatch(r"cpu\d+", n))


def _idle_states(cpu_dir: Path) -> tuple[IdleState, ...]:
    try:
        names = [p.name for p in (cpu_dir / "cpuidle").iterdir()]
    except OSError:
        return ()
    states = []
    for index in sorted(int(n[5:]) for n in names if re.fullmatch(r"state\d+", n)):
        d = cpu_dir / "cpuidle" / f"state{index}"
        latency, residency = (
            _number(read_value(d / "latency")),
            _number(read_value(d / "residency")),
        )
        disable = read_value(d / "disable")
        states.append(
            IdleState(
                index=index,
                name=read_value(d / "name") or f"state{index}",
                latency_us=latency if isinstance(latency, int) else None,
                residency_us=residency if isinstance(residency, int) else None,
                disabled=None if disable is None else disable != "0",
            )
        )
    return tuple(states)


def inspect(*, root: Path = Path("/")) -> SystemState:
    """Read the cpuidle driver and governor, haltpoll's parameters, and per CPU the cpufreq
    governor and cpuidle states. Never raises: what is missing is absent."""
    root = Path(root)
    haltpoll: dict[str, int | str] = {}
    for name in HALTPOLL_PARAMS:
        value = _number(read_value(root / HALTPOLL_DIR / name))
        if value is not None:
            haltpoll[name] = value
    cpus = []
    for n in _cpu_numbers(root):
        cpu_dir = root / CPU_DIR / f"cpu{n}"
        available = read_value(cpu_dir / "cpufreq" / "scaling_available_governors")
        cpus.append(
            CpuState(
                cpu=n,
                governor=read_value(cpu_dir / "cpufreq" / "scaling_governor"),
                available_governors=tuple(available.split()) if available else (),
                idle_states=_idle_states(cpu_dir),
            )
        )
    return SystemState(
        root=root,
        cpuidle_driver=read_value(root / CPUIDLE_DIR / "current_driver"),
        cpuidle_governor=read_value(root / CPUIDLE_DIR / "current_governor")
        or read_value(root / CPUIDLE_DIR / "current_governor_ro"),
        haltpoll=haltpoll,
        cpus=[c for c in cpus if c.settings()],
    )


# --------------------------------------------------------------------------------------------------
# What to do about it


def _halt_note(state: SystemState) -> str | None:
    if not state.halts_on_idle:
        return None
    return (
        "idle CPUs halt at once (cpuidle haltpoll, guest_halt_poll_ns=0): each response that "
        "wakes wrk's idle CPU costs the server microseconds (calibrate measured +22% and "
        "+6 µs per request here); `harness system tune` (as root) makes idle CPUs poll first"
    )


def advice(state: SystemState) -> list[str]:
    """One line per setting that can distort a measurement, with what fixes it."""
    notes = []
    halt = _halt_note(state)
    if halt is not None:
        notes.append(halt)
    slow: dict[str, list[int]] = {}
    for cpu in state.cpus:
        if cpu.governor is not None and cpu.governor != PERFORMANCE:
            slow.setdefault(cpu.governor, []).append(cpu.cpu)
    for governor, cpus in slow.items():
        can = any(PERFORMANCE in c.available_governors for c in state.cpus if c.cpu in cpus)
        fix = (
            "`harness system tune` (as root) sets performance"
            if can
            else "performance is not available"
        )
        notes.append(
            f"cpufreq governor {governor} on CPU {cpu_ranges(cpus)}: the clock follows the "
            f"load, so a slower server runs on a slower CPU; {fix}"
        )
    return notes


def idle_note(*, root: Path | None = None) -> str | None:
    """The one-line note for compare and calibrate when idle CPUs halt at once, else None."""
    note = _halt_note(inspect(root=default_root() if root is None else root))
    return None if note is None else f"note: {note}"
