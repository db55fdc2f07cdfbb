"""What compare measures and finds: contenders, their rounds, and the summary with intervals.

A round's cost is taken at its saturating (peak QPS) level, two ways; a set's overhead is its cost
minus its reference's (the target's `none` set, or else the raw baseline), paired round by round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.results import SweepResult
from harness.measure.stats import Estimate, estimate, paired_differences
from middleware.stack import stack_file_name, stack_name
from targets.table import Target, get_target

GENERATOR_BOUND = 0.8  # within 20% of the ceiling's QPS: the run measured wrk, not the target
LITTLE_TOLERANCE = 0.2  # concurrency vs QPS x mean latency


@dataclass(frozen=True)
class Contender:
    target: Target
    stack: tuple[str, ...]
    role: str  # "set" or "baseline"
    server: str | None = None  # a server of targets.server_table; None: the target's default

    @property
    def set_name(self) -> str:
        return stack_name(self.stack, self.target.layers)

    def label(self, multi_target: bool, multi_server: bool = False) -> str:
        name = self.set_name
        if self.role == "baseline" or multi_target:
            name = f"{self.target.name}:{name}"
        return f"{self.server}:{name}" if multi_server and self.server else name

    @property
    def file_stem(self) -> str:
        # The label's file-safe spelling: `spin:20us` is `spin-20us` in file names.
        stem = f"{self.target.name}_{stack_file_name(self.stack, self.target.layers)}"
        return f"{self.server}_{stem}" if self.server else stem


@dataclass
class Round:
    """One contender measured once: a fresh server, validated, swept."""

    repeat: int
    status: str = "missing"  # "ok", "failed" or "missing" (never run: interrupted or stopped)
    reason: str = ""
    sweep: SweepResult | None = None
    peak_level: int | None = None
    peak_qps: float = math.nan
    p99_ms: float | None = None
    latency_avg_ms: float | None = None
    connections: int | None = None
    cost_qps_us: float = math.nan
    cost_cpu_us: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "repeat": self.repeat,
            "status": self.status,
            "reason": self.reason,
            "files": str(self.sweep.json_path) if self.sweep else None,
            "peak_level": self.peak_level,
            "peak_qps": _finite_or_none(self.peak_qps),
            "p99_ms": self.p99_ms,
            "latency_avg_ms": self.latency_avg_ms,
            "connections": self.connections,
            "cost_qps_us": _finite_or_none(self.cost_qps_us),
            "cost_cpu_us": _finite_or_none(self.cost_cpu_us),
        }


@dataclass
class Entry:
    """A contender and its rounds, with the estimates the report shows."""

    contender: Contender
    label: str
    rounds: list[Round]
    server: str = ""  # the server it ran on, resolved (the target's default when not chosen)
    reference: Entry | None = None  # what the overhead is measured against
    peak_qps: Estimate | None = None
    cost_qps: Estimate | None = None
    cost_cpu: Estimate | None = None
    overhead_qps: Estimate | None = None
    overhead_cpu: Estimate | None = None
    pct_of_baseline: float | None = None
    p99_ms: float | None = None
    flags: list[str] = field(default_factory=list)
    invalid: bool = False  # it answered wrongly: never timed again

    @property
    def ok_rounds(self) -> list[Round]:
        return [r for r in self.rounds if r.status == "ok"]

    @property
    def missing(self) -> list[str]:
        return [
            f"{self.label} round {r.repeat}: {r.status}" + (f" ({r.reason})" if r.reason else "")
            for r in self.rounds
            if r.status != "ok"
        ]

    def to_dict(self) -> dict[str, Any]:
        def est(e: Estimate | None) -> dict[str, Any] | None:
            return e.to_dict() if e else None

        return {
            "name": self.label,
            "target": self.contender.target.name,
            "server": self.server,
            "role": self.contender.role,
            "middlewares": list(self.contender.stack),
            "reference": self.reference.label if self.reference else None,
            "peak_qps": self.peak_qps.median if self.peak_qps else None,
            "peak_qps_estimate": est(self.peak_qps),
            "pct_of_baseline": self.pct_of_baseline,
            "cost_us_per_request": {"qps": est(self.cost_qps), "cpu": est(self.cost_cpu)},
            # The headline figure: CPU time per request is the steadier of the two measures.
            "overhead_us_per_request": self.overhead_cpu.median if self.overhead_cpu else None,
            "overhead_us_per_request_ci": est(self.overhead_cpu),
            "overhead_qps_us_per_request": est(self.overhead_qps),
            "p99_ms_at_peak": self.p99_ms,
            "rounds_used": len(self.ok_rounds),
            "half_width_us": self.overhead_cpu.half_width if self.overhead_cpu else None,
            "flags": self.flags,
            "rounds": [r.to_dict() for r in self.rounds],
        }


@dataclass
class CompareReport:
    targets: list[str]
    baselines: list[str]
    entries: list[Entry]
    settings: dict[str, Any]
    out_dir: Path
    servers: list[str] = field(default_factory=list)  # chosen with --server; [] : the defaults
    # With more than one server: each server on each raw app, against the first server.
    server_rows: list[ServerRow] = field(default_factory=list)
    ceiling_qps: float | None = None
    interrupted: bool = False
    wall_s: float = 0.0
    gate: float | None = None
    files: list[Path] = field(default_factory=list)
    precision_missed: list[str] = field(default_factory=list)  # with a precision target

    @property
    def sets(self) -> list[Entry]:
        return [e for e in self.entries if e.contender.role == "set"]

    @property
    def missing(self) -> list[str]:
        return [m for e in self.entries for m in e.missing]

    @property
    def gate_failures(self) -> list[str]:
        if self.gate is None:
            return []
        return [
            f"{e.label}: {e.overhead_cpu.median:.1f} µs/request > {self.gate:g}"
            for e in self.sets
            if e.contender.stack
            and e.overhead_cpu is not None
            and e.overhead_cpu.median > self.gate
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": ",".join(self.targets),
            "baseline": ",".join(dict.fromkeys(self.baselines)) or None,
            "servers": self.servers,
            "sets": [e.to_dict() for e in self.sets],
            "baselines": [e.to_dict() for e in self.entries if e.contender.role == "baseline"],
            "server_comparison": [row.to_dict() for row in self.server_rows],
            "ceiling_qps": self.ceiling_qps,
            "settings": self.settings,
            "interrupted": self.interrupted,
            "missing": self.missing,
            "wall_s": round(self.wall_s, 1),
            "max_overhead_us": self.gate,
            "gate_failures": self.gate_failures,
            "precision_missed": self.precision_missed,
            "environment": self.environment,
        }

    @property
    def environment(self) -> dict[str, Any]:
        """Versions, CPUs, pinning and system state, as the first measured sweep recorded them
        (every round's NAME.json has its own)."""
        sweeps = (r.sweep for e in self.entries for r in e.rounds if r.sweep is not None)
        first = next(sweeps, None)
        return first.environment if first is not None else {}


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def contenders(
    targets: Sequence[str | Target],
    sets: Sequence[tuple[str, ...]],
    baseline: bool,
    servers: Sequence[str | None] = (None,),
) -> list[Contender]:
    """Per server: every target with every set, then each target's raw baseline on that server
    (unless it is one of them)."""
    chosen_targets = [get_target(t) if isinstance(t, str) else t for t in targets]
    everything: list[Contender] = []
    for server in servers or (None,):
        chosen = [Contender(t, stack, "set", server) for t in chosen_targets for stack in sets]
        if baseline:
            for name in dict.fromkeys(t.baseline for t in chosen_targets):
                if name is None:
                    continue
                base = Contender(get_target(name), (), "baseline", server)
                if not any(c.target == base.target and c.stack == () for c in chosen):
                    chosen.append(base)
        everything += chosen
    return everything


def summarize(entries: list[Entry], ceiling_qps: float | None) -> None:
    """Each entry's estimates, and its overhead against the `none` set of its target, or else
    the raw baseline, on the same server."""
    by_key = {(e.server, e.contender.target.name, e.contender.stack): e for e in entries}
    for entry in entries:
        ok = entry.ok_rounds
        if not ok:
            continue
        entry.peak_qps = estimate([r.peak_qps for r in ok])
        entry.cost_qps = estimate([r.cost_qps_us for r in ok])
        cpu = [r.cost_cpu_us for r in ok if math.isfinite(r.cost_cpu_us)]
        entry.cost_cpu = estimate(cpu) if cpu else None
        entry.p99_ms = _median([r.p99_ms for r in ok])
        target = entry.contender.target
        none = by_key.get((entry.server, target.name, ()))
        base = by_key.get((entry.server, target.baseline, ())) if target.baseline else None
        entry.reference = none if entry.contender.stack and none else base
        if entry.reference is entry:
            entry.reference = None
        if base is not None and base.ok_rounds and base is not entry:
            base_qps = _median([r.peak_qps for r in base.ok_rounds])
            if base_qps:
                entry.pct_of_baseline = 100 * entry.peak_qps.median / base_qps
        entry.flags = flags(entry, ceiling_qps)
    for entry in entries:
        if entry.reference is not None:
            entry.overhead_qps, entry.overhead_cpu = overheads(entry, entry.reference)


def overheads(entry: Entry, reference: Entry) -> tuple[Estimate | None, Estimate | None]:
    """`entry`'s cost minus `reference`'s, paired round by round: (1e6/QPS, CPU) estimates."""
    if not entry.ok_rounds or not reference.ok_rounds:
        return None, None
    pairs = _paired(entry.rounds, reference.rounds)
    diffs_qps = paired_differences(
        [a.cost_qps_us for a, _ in pairs], [b.cost_qps_us for _, b in pairs]
    )
    diffs_cpu = paired_differences(
        [a.cost_cpu_us for a, _ in pairs], [b.cost_cpu_us for _, b in pairs]
    )
    return (
        estimate(diffs_qps) if diffs_qps else None,
        estimate(diffs_cpu) if diffs_cpu else None,
    )


@dataclass
class ServerRow:
    """One server on one raw app, against the first server on the same app."""

    server: str
    app: str  # the raw target
    entry: Entry
    reference: Entry | None  # the first server's entry; None for the first server itself
    qps_ratio: float | None = None  # peak QPS over the reference's
    overhead_qps: Estimate | None = None
    overhead_cpu: Estimate | None = None

    def to_dict(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "server": self.server,
            "app": self.app,
            "name": entry.label,
            "peak_qps": entry.peak_qps.median if entry.peak_qps else None,
            "cost_us_per_request": {
                "qps": entry.cost_qps.to_dict() if entry.cost_qps else None,
                "cpu": entry.cost_cpu.to_dict() if entry.cost_cpu else None,
            },
            "reference": self.reference.server if self.reference else None,
            "qps_ratio": self.qps_ratio,
            "overhead_us_per_request": self.overhead_cpu.median if self.overhead_cpu else None,
            "overhead_us_per_request_ci": self.overhead_cpu.to_dict()
            if self.overhead_cpu
            else None,
            "overhead_qps_us_per_request": (
                self.overhead_qps.to_dict() if self.overhead_qps else None
            ),
        }


def server_rows(entries: list[Entry], servers: Sequence[str]) -> list[ServerRow]:
    """The servers against each other on the raw app of each interface measured (the raw
    baseline, or a raw target's `none` set), each against the first server; [] with fewer than
    two servers."""
    if len(servers) < 2:
        return []
    raw = {
        (e.server, e.contender.target.name): e
        for e in entries
        if e.contender.target.is_raw and e.contender.stack == ()
    }
    rows = []
    for app in dict.fromkeys(name for _, name in raw):
        first = raw.get((servers[0], app))
        for server in servers:
            entry = raw.get((server, app))
            if entry is None:
                continue
            row = ServerRow(server, app, entry, first if entry is not first else None)
            if row.reference is not None:
                row.overhead_qps, row.overhead_cpu = overheads(entry, row.reference)
                if entry.peak_qps and row.reference.peak_qps and row.reference.peak_qps.median:
                    row.qps_ratio = entry.peak_qps.median / row.reference.peak_qps.median
            rows.append(row)
    return rows


def _paired(rounds: list[Round], reference: list[Round]) -> list[tuple[Round, Round]]:
    ref = {r.repeat: r for r in reference if r.status == "ok"}
    return [(r, ref[r.repeat]) for r in rounds if r.status == "ok" and r.repeat in ref]


def _median(values: Sequence[float | None]) -> float | None:
    clean = sorted(v for v in values if v is not None and math.isfinite(v))
    if not clean:
        return None
    mid = len(clean) // 2
    return clean[mid] if len(clean) % 2 else (clean[mid - 1] + clean[mid]) / 2


def flags(entry: Entry, ceiling_qps: float | None) -> list[str]:
    found = []
    if ceiling_qps and entry.peak_qps and entry.peak_qps.median >= GENERATOR_BOUND * ceiling_qps:
        share = 100 * entry.peak_qps.median / ceiling_qps
        found.append(f"wrk-bound ({share:.0f}% of ceiling)")
    for r in entry.ok_rounds:
        if r.latency_avg_ms and r.connections:
            in_flight = r.peak_qps * r.latency_avg_ms / 1000
            if abs(in_flight / r.connections - 1) > LITTLE_TOLERANCE:
                found.append(f"Little's law off: c={r.connections}, QPS×latency={in_flight:.0f}")
                break
    return found
