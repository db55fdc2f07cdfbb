"""`harness compare`: the cost of a framework and of each middleware set, per request, with 95%
intervals, against the raw baseline on the same server stack.

Every (target, middleware set) is a contender. Repeats interleave the contenders (A B A B ...),
each round on a freshly started, pinned server whose answers are validated first. A round's cost
is measured two ways at its saturating (peak QPS) level: `1e6 / QPS` times the server cores, and
the server's CPU time (all its processes, user + system) per completed request. A set's overhead
is its cost minus its reference's (the target's `none` set, or else the raw baseline), round by
round, so the interval is that of paired differences.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.load.results import SweepResult
from harness.load.sweep import check_levels, check_out_dir, sweep
from harness.load.validate import ValidationError, validate
from harness.load.wrk import resolve_wrk, wrk_seconds
from harness.machine.cpus import CpuPlan, plan
from harness.machine.system import idle_note
from harness.measure.stats import Estimate, estimate, paired_differences
from harness.serving.servers import SYNC_NOTE, RunningServer, ServerError, start_server
from middleware.stack import stack_file_name, stack_name
from targets.table import Target, get_target

DEFAULT_OUT_DIR = Path("_output/compare")
GENERATOR_BOUND = 0.8  # within 20% of the ceiling's QPS: the run measured wrk, not the target
LITTLE_TOLERANCE = 0.2  # concurrency vs QPS x mean latency


@dataclass(frozen=True)
class Contender:
    target: Target
    stack: tuple[str, ...]
    role: str  # "set" or "baseline"

    @property
    def set_name(self) -> str:
        return stack_name(self.stack)

    def label(self, multi_target: bool) -> str:
        if self.role == "baseline" or multi_target:
            return f"{self.target.name}:{self.set_name}"
        return self.set_name

    @property
    def file_stem(self) -> str:
        # The label's file-safe spelling: `spin:20us` is `spin-20us` in file names.
        return f"{self.target.name}_{stack_file_name(self.stack)}"


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
    reference: Entry | None = None  # what the overhead is measured against
    peak_qps: Estimate | None = None
    cost_qps: Estimate | None = None
    cost_cpu: Estimate | None = None
    overhead_qps: Estimate | None = None
    overhead_cpu: Estimate | None = None
    pct_of_baseline: float | None = None
    p99_ms: float | None = None
    flags: list[str] = field(default_factory=list)

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
    ceiling_qps: float | None = None
    interrupted: bool = False
    wall_s: float = 0.0
    gate: float | None = None
    files: list[Path] = field(default_factory=list)

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
            "baseline": ",".join(self.baselines) or None,
            "sets": [e.to_dict() for e in self.sets],
            "baselines": [e.to_dict() for e in self.entries if e.contender.role == "baseline"],
            "ceiling_qps": self.ceiling_qps,
            "settings": self.settings,
            "interrupted": self.interrupted,
            "missing": self.missing,
            "wall_s": round(self.wall_s, 1),
            "max_overhead_us": self.gate,
            "gate_failures": self.gate_failures,
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
    targets: Sequence[str], sets: Sequence[tuple[str, ...]], baseline: bool
) -> list[Contender]:
    chosen = [Contender(get_target(t), stack, "set") for t in targets for stack in sets]
    if baseline:
        for name in dict.fromkeys(get_target(t).baseline for t in targets):
            if name is None:
                continue
            base = Contender(get_target(name), (), "baseline")
            if not any(c.target == base.target and c.stack == () for c in chosen):
                chosen.append(base)
    return chosen


def cpu_probe(server: RunningServer) -> Callable[[int], Callable[[], dict[str, Any]]]:
    """Server CPU seconds (every process, user + system) over exactly one wrk level."""

    def cpu_seconds() -> float:
        total = 0.0
        for proc in server.processes():
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def start(concurrency: int) -> Callable[[], dict[str, Any]]:
        before = cpu_seconds()

        def finish() -> dict[str, Any]:
            return {"server_cpu_s": cpu_seconds() - before, "server_alive": server.alive()}

        return finish

    return start


def server_cores(server_cpus: tuple[int, ...] | None, workers: int) -> int:
    """How many cores the server can keep busy: one per worker process (the GIL), at most the
    CPUs it is pinned to."""
    available = len(server_cpus) if server_cpus else len(psutil.Process().cpu_affinity() or [0])
    return max(1, min(workers, available))


def measure_round(
    contender: Contender,
    repeat: int,
    *,
    name: str,
    cpus: CpuPlan,
    workers: int,
    worker_class: str | None,
    threads: int | None,
    out_dir: Path,
    sweep_options: dict[str, Any],
) -> Round:
    result = Round(repeat)
    log_path = out_dir / "logs" / f"{contender.file_stem}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)  # each round's log stands alone
    worker_class = worker_class if contender.target.interface == "wsgi" else None
    server = start_server(
        contender.target,
        stack=contender.stack,
        workers=workers,
        worker_class=worker_class,
        threads=threads,
        cpus=cpus.server,
        log_output=f"file:{log_path}",
    )
    try:
        validate(server.url, contender.stack)
        swept = sweep(
            url=f"{server.url}/healthz",
            name=name,
            out_dir=out_dir,
            cpus=cpus.load,
            progress=False,
            probe=cpu_probe(server),
            meta={
                "target": contender.target.name,
                "middlewares": list(contender.stack),
                "workers": workers,
                "worker_class": server.config.effective_worker_class,
                "server_cpus": list(cpus.server) if cpus.server else None,
                "repeat": repeat,
            },
            **sweep_options,
        )
        result.sweep = swept
        if not server.alive():
            tail = server.stderr_tail(5).replace("\n", " | ")
            raise ServerError(
                f"server exited with code {server.process.returncode} mid-sweep: {tail}"
            )
    finally:
        server.stop()
    peak = swept.peak
    if peak is None:
        result.status = "failed"
        result.reason = "no level measured: " + "; ".join(
            sorted({lv.reason for lv in swept.levels if lv.reason})
        )
        return result
    result.status = "ok"
    result.peak_level = peak.concurrency
    result.peak_qps = peak.qps
    result.p99_ms = peak.p99_ms
    result.latency_avg_ms = peak.latency_avg_ms
    result.connections = peak.connections
    result.cost_qps_us = 1e6 * server_cores(cpus.server, workers) / peak.qps
    cpu_s = peak.extra.get("server_cpu_s")
    if cpu_s is not None and peak.requests > 0:
        result.cost_cpu_us = 1e6 * cpu_s / peak.requests
    return result


def measure_ceiling(*, cpus: CpuPlan, out_dir: Path, sweep_options: dict[str, Any]) -> float | None:
    """The load generator's limit with these settings: the ceiling server's peak QPS."""
    server = start_server("ceiling", cpus=cpus.server)
    try:
        swept = sweep(
            url=f"{server.url}/healthz",
            name="ceiling",
            out_dir=out_dir,
            cpus=cpus.load,
            progress=False,
            meta={"target": "ceiling"},
            **sweep_options,
        )
    finally:
        server.stop()
    return swept.peak.qps if swept.peak else None


def summarize(entries: list[Entry], ceiling_qps: float | None) -> None:
    by_key = {(e.contender.target.name, e.contender.stack): e for e in entries}
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
        none = by_key.get((target.name, ()))
        base = by_key.get((target.baseline, ())) if target.baseline else None
        entry.reference = none if entry.contender.stack and none else base
        if entry.reference is entry:
            entry.reference = None
        if base is not None and base.ok_rounds and base is not entry:
            base_qps = _median([r.peak_qps for r in base.ok_rounds])
            if base_qps:
                entry.pct_of_baseline = 100 * entry.peak_qps.median / base_qps
        entry.flags = flags(entry, ceiling_qps)
    for entry in entries:
        ref = entry.reference
        if ref is None or not entry.ok_rounds or not ref.ok_rounds:
            continue
        pairs = _paired(entry.rounds, ref.rounds)
        diffs_qps = paired_differences(
            [a.cost_qps_us for a, _ in pairs], [b.cost_qps_us for _, b in pairs]
        )
        diffs_cpu = paired_differences(
            [a.cost_cpu_us for a, _ in pairs], [b.cost_cpu_us for _, b in pairs]
        )
        entry.overhead_qps = estimate(diffs_qps) if diffs_qps else None
        entry.overhead_cpu = estimate(diffs_cpu) if diffs_cpu else None


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


def compare(
    *,
    targets: Sequence[str],
    sets: Sequence[tuple[str, ...]],
    baseline: bool = True,
    levels: Sequence[int] = (64,),
    duration: float = 3.0,
    timeout: float = 5.0,
    warmup: float = 1.0,
    repeat: int = 1,
    workers: int = 1,
    worker_class: str | None = None,
    threads: int | None = None,
    pin: bool = True,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    wrk: str | None = None,
    ceiling: bool = True,
    ceiling_qps: float | None = None,
    max_overhead_us: float | None = None,
    echo: Callable[[str], None] = print,
) -> CompareReport:
    """Measure every contender `repeat` times, interleaved; each round's sweep files go into
    `out_dir` as it runs (harness.output.compare_report writes the report itself). Ctrl-C stops
    measuring: the report of the rounds that finished is returned with `interrupted` set."""
    if repeat < 1:
        raise ValueError("--repeat must be at least 1")
    if not targets or not sets:
        raise ValueError("at least one target and one middleware set are needed")
    out = Path(out_dir)
    chosen = contenders(targets, sets, baseline)
    multi = len(targets) > 1
    cpu_plan = plan(pin)
    sweep_options = {
        "levels": tuple(levels),
        "duration": duration,
        "timeout": timeout,
        "warmup": warmup,
        "wrk": wrk,
    }
    # Fail on bad settings (SweepError, WrkError) before a single server starts.
    check_levels(levels)
    check_out_dir(out)
    resolve_wrk(wrk)
    entries = [Entry(c, c.label(multi), [Round(r + 1) for r in range(repeat)]) for c in chosen]
    report = CompareReport(
        targets=list(targets),
        baselines=[e.contender.target.name for e in entries if e.contender.role == "baseline"],
        entries=entries,
        settings={
            "levels": list(levels),
            # What wrk really ran: it takes whole seconds.
            "duration_s": float(wrk_seconds(duration)),
            "warmup_s": float(wrk_seconds(warmup)) if warmup > 0 else 0.0,
            "timeout_s": timeout,
            "repeat": repeat,
            "workers": workers,
            "worker_class": worker_class,
            "threads": threads,
            "pinning": cpu_plan.describe(),
            "server_cpus": list(cpu_plan.server) if cpu_plan.server else None,
            "wrk_cpus": list(cpu_plan.load) if cpu_plan.load else None,
        },
        out_dir=out,
        ceiling_qps=ceiling_qps,
        gate=max_overhead_us,
    )
    started = time.monotonic()
    echo(f"compare: {len(entries)} contenders × {repeat} round(s), {cpu_plan.describe()}")
    if any(
        e.contender.target.interface == "wsgi" and (worker_class or "sync") == "sync"
        for e in entries
    ):
        echo(SYNC_NOTE)
    halt = idle_note()
    if halt is not None:
        echo(halt)
    invalid: set[int] = set()
    try:
        if ceiling and ceiling_qps is None:
            report.ceiling_qps = measure_ceiling(
                cpus=cpu_plan, out_dir=out, sweep_options=sweep_options
            )
            if report.ceiling_qps:
                echo(f"ceiling (the load generator's limit): {report.ceiling_qps:,.0f} req/s")
        total = len(entries) * repeat
        done = 0
        for r in range(repeat):
            for index, entry in enumerate(entries):
                done += 1
                if index in invalid:
                    entry.rounds[r].status = "failed"
                    entry.rounds[r].reason = "not timed: it answered wrongly in round 1"
                    continue
                name = entry.contender.file_stem + (f"_r{r + 1}" if repeat > 1 else "")
                try:
                    measured = measure_round(
                        entry.contender,
                        r + 1,
                        name=name,
                        cpus=cpu_plan,
                        workers=workers,
                        worker_class=worker_class,
                        threads=threads,
                        out_dir=out,
                        sweep_options=sweep_options,
                    )
                except ValidationError as exc:
                    invalid.add(index)
                    measured = Round(r + 1, "failed", f"answered wrongly, not timed: {exc}")
                except ServerError as exc:
                    measured = Round(r + 1, "failed", str(exc).splitlines()[0])
                entry.rounds[r] = measured
                echo(_progress_line(done, total, entry.label, measured))
    except KeyboardInterrupt:
        report.interrupted = True
    report.wall_s = time.monotonic() - started
    summarize(entries, report.ceiling_qps)
    return report


def _progress_line(done: int, total: int, label: str, measured: Round) -> str:
    head = f"[{done}/{total}] {label} round {measured.repeat}: "
    if measured.status != "ok":
        return head + f"{measured.status}: {measured.reason}"
    cpu = f", {measured.cost_cpu_us:.1f} µs CPU" if math.isfinite(measured.cost_cpu_us) else ""
    return head + (
        f"{measured.peak_qps:,.0f} req/s at c={measured.peak_level}, "
        f"{measured.cost_qps_us:.1f} µs/request{cpu}"
    )
