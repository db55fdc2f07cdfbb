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
from pathlib import Path
from typing import Any

from harness.load.request import Request
from harness.load.sweep import check_levels, check_out_dir, sweep
from harness.load.validate import ValidationError, validate
from harness.load.wrk import resolve_wrk
from harness.load.wrk_output import wrk_seconds
from harness.machine.cpus import CpuPlan, plan
from harness.machine.system import idle_note
from harness.machine.tune import tuned_for_run
from harness.measure.contenders import (
    CompareReport,
    Contender,
    Entry,
    Round,
    contenders,
    server_rows,
    summarize,
)
from harness.measure.rounds import Precision, Schedule, missed
from harness.measure.server_cpu import cpu_probe, server_cores
from harness.serving.servers import ServerError, start_server
from targets.server_table import Server
from targets.table import Target

DEFAULT_OUT_DIR = Path("_output/compare")


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
    request: Request | None = None,
    log_output: str | None = None,
) -> Round:
    """`contender` on a fresh server: its answer to `request` (default: GET /healthz) checked,
    then swept with it."""
    result = Round(repeat)
    target = contender.target
    asked = request or Request()
    if log_output is None:
        # The default sink: a real file, as in production; each round's log stands alone.
        log_path = out_dir / "logs" / f"{contender.file_stem}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)
        log_output = f"file:{log_path}"
    worker_class = _worker_class_for(contender, worker_class)
    server = start_server(
        contender.target,
        stack=contender.stack,
        workers=workers,
        worker_class=worker_class,
        threads=threads,
        server=contender.server,
        cpus=cpus.server,
        log_output=log_output,
        ready_path=asked.path,
    )
    try:
        validate(server.url, contender.stack, request, marks=not target.is_user_app)
        swept = sweep(
            url=f"{server.url}{asked.path}",
            request=request,
            name=name,
            out_dir=out_dir,
            cpus=cpus.load,
            progress=False,
            probe=cpu_probe(server),
            meta={
                "target": contender.target.name,
                "middlewares": list(contender.stack),
                "server": server.config.serving.name,
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
        server.stop(graceful=False)  # measured: nothing to wait for
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
        server.stop(graceful=False)
    return swept.peak.qps if swept.peak else None


def compare(
    *,
    targets: Sequence[str | Target],
    sets: Sequence[tuple[str, ...]],
    baseline: bool = True,
    request: Request | None = None,
    levels: Sequence[int] = (64,),
    duration: float = 3.0,
    timeout: float = 5.0,
    warmup: float = 1.0,
    repeat: int = 1,
    workers: int = 1,
    worker_class: str | None = None,
    threads: int | None = None,
    servers: Sequence[str] | None = None,
    pin: bool = True,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    wrk: str | None = None,
    ceiling: bool = True,
    ceiling_qps: float | None = None,
    max_overhead_us: float | None = None,
    precision: Precision | None = None,
    tune: bool = True,
    log_output: str | None = None,
    echo: Callable[[str], None] = print,
) -> CompareReport:
    """Measure every contender `repeat` times, interleaved; each round's sweep files go into
    `out_dir` as it runs (harness.output.compare_report writes the report itself). Ctrl-C stops
    measuring: the report of the rounds that finished is returned with `interrupted` set.

    With `precision`, rounds go on past `repeat` (at least 3) until every set's 95% half-width
    is at most the target or the budget is spent (harness.measure.rounds); the report lists the
    sets that missed. `tune`: the machine is tuned for the run where it distorts overheads and
    this process may tune it (harness.machine.tune.tuned_for_run), and put back at the end.

    `targets` are names of the table's targets, or user apps (harness.serving.apps.target_for).
    `request` (default GET /healthz) is what each set is checked with and timed with; a raw
    baseline beside a user's app is timed with its own GET /healthz.

    `servers` (targets.server_table; default: each target's own) makes the server an axis:
    every (server, set) in the same interleaved rounds, each against the raw app on the same
    server, and the servers against the first on the raw app (`report.server_rows`)."""
    if repeat < 1:
        raise ValueError("--repeat must be at least 1")
    if not targets or not sets:
        raise ValueError("at least one target and one middleware set are needed")
    chosen_servers = list(dict.fromkeys(servers or ()))
    out = Path(out_dir)
    chosen = contenders(targets, sets, baseline, chosen_servers or [None])
    # Every contender's server, resolved: one that cannot serve its target (or disagrees with
    # --worker-class) is a ServerChoiceError here, before a single server starts.
    serving: dict[Contender, Server] = {
        c: c.target.server_for(c.server, _worker_class_for(c, worker_class)) for c in chosen
    }
    multi = len(targets) > 1
    multi_server = len(chosen_servers) > 1
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
    entries = [Entry(c, c.label(multi, multi_server), [], serving[c].name) for c in chosen]
    numbered = repeat > 1 or precision is not None
    report = CompareReport(
        targets=list(dict.fromkeys(c.target.name for c in chosen if c.role == "set")),
        baselines=list(
            dict.fromkeys(
                e.contender.target.name for e in entries if e.contender.role == "baseline"
            )
        ),
        entries=entries,
        servers=chosen_servers,
        settings={
            "levels": list(levels),
            # What wrk really ran: it takes whole seconds.
            "duration_s": float(wrk_seconds(duration)),
            "warmup_s": float(wrk_seconds(warmup)) if warmup > 0 else 0.0,
            "timeout_s": timeout,
            "repeat": repeat,
            "workers": workers,
            # The WSGI worker really used (compare's default is gthread), for whoever reads it.
            "worker_class": worker_class
            or next(
                (s.worker_class for c, s in serving.items() if c.target.interface == "wsgi"), None
            ),
            "threads": threads,
            "servers": chosen_servers or None,
            "pinning": cpu_plan.describe(),
            "server_cpus": list(cpu_plan.server) if cpu_plan.server else None,
            "wrk_cpus": list(cpu_plan.load) if cpu_plan.load else None,
            "request": (request or Request()).to_dict(),
            "precision_us": precision.target_us if precision else None,
            "budget_s": precision.budget_s if precision else None,
            "log_output": log_output or "file:DIR/logs/SET.log",
            "apps": {
                c.target.name: {"app": c.target.app, "framework": c.target.framework}
                for c in chosen
                if c.target.is_user_app
            },
        },
        out_dir=out,
        ceiling_qps=ceiling_qps,
        gate=max_overhead_us,
    )
    has_app = any(c.target.is_user_app for c in chosen)

    def request_for(contender: Contender) -> Request | None:
        # The targets here all answer the same routes; a user's app answers its own, and the
        # raw baseline beside it is timed on its /healthz.
        return request if contender.target.is_user_app or not has_app else None

    started = time.monotonic()
    rounds = (
        f"{repeat} round(s)"
        if precision is None
        else f"rounds until ±{precision.target_us:g} µs or {precision.budget_s:g}s"
    )
    echo(f"compare: {len(entries)} contenders × {rounds}, {cpu_plan.describe()}")
    for note in dict.fromkeys(server.note for server in serving.values() if server.note):
        echo(note)
    with tuned_for_run(enabled=tune, echo=echo) as tuned:
        report.settings["tuned_for_run"] = [c.describe() for c in tuned.changes] if tuned else []
        halt = idle_note()
        if halt is not None:
            echo(halt)
        schedule = Schedule(entries, repeat=repeat, precision=precision)
        try:
            if ceiling and ceiling_qps is None:
                report.ceiling_qps = measure_ceiling(
                    cpus=cpu_plan, out_dir=out, sweep_options=sweep_options
                )
                if report.ceiling_qps:
                    echo(f"ceiling (the load generator's limit): {report.ceiling_qps:,.0f} req/s")
            while picked := schedule.next(time.monotonic() - started):
                r = schedule.rounds
                for index in picked:
                    entries[index].rounds.append(Round(r))  # missing until measured
                for index in picked:
                    entry = entries[index]
                    run_started = time.monotonic()
                    measured = _one_round(
                        entry,
                        r,
                        name=entry.contender.file_stem + (f"_r{r}" if numbered else ""),
                        cpus=cpu_plan,
                        workers=workers,
                        worker_class=worker_class,
                        threads=threads,
                        out_dir=out,
                        sweep_options=sweep_options,
                        request=request_for(entry.contender),
                        log_output=log_output,
                    )
                    schedule.run_s.append(time.monotonic() - run_started)
                    entry.rounds[-1] = measured
                    echo(_progress_line(r, schedule.fixed_rounds, entry.label, measured))
                summarize(entries, report.ceiling_qps)
        except KeyboardInterrupt:
            report.interrupted = True
    for entry in entries:
        _mark_missing(entry, schedule.fixed_rounds)
    report.wall_s = time.monotonic() - started
    summarize(entries, report.ceiling_qps)
    report.server_rows = server_rows(entries, chosen_servers)
    if precision is not None:
        report.precision_missed = missed(entries, precision)
        report.settings["rounds"] = schedule.rounds
    return report


# What compare times a WSGI target on when neither --worker-class nor --server says: gthread,
# which keeps connections alive. On the sync worker every request is also a TCP connection, and
# Flask's 95% interval per minute of measurement is 4 to 6 times wider (bench part f,
# docs/middleware.md): a middleware's cost then hides in the connection's.
COMPARE_WSGI_WORKER = "gthread"


def _worker_class_for(contender: Contender, worker_class: str | None) -> str | None:
    # --worker-class is gunicorn's for WSGI; beside an ASGI or aiohttp target it is not theirs.
    if contender.target.interface != "wsgi":
        return None
    if worker_class is None and contender.server is None:
        return COMPARE_WSGI_WORKER
    return worker_class


def _one_round(entry: Entry, r: int, **options: Any) -> Round:
    """One measurement of `entry`, its failure kept as a failed round: a wrong answer marks it
    invalid (it is not timed again), a server that would not start or died fails this round."""
    try:
        return measure_round(entry.contender, r, **options)
    except ValidationError as exc:
        entry.invalid = True
        return Round(r, "failed", f"answered wrongly, not timed: {exc}")
    except ServerError as exc:
        return Round(r, "failed", str(exc).splitlines()[0])


def _mark_missing(entry: Entry, fixed_rounds: int) -> None:
    """The fixed rounds `entry` has no result for: missing (interrupted before them), or not
    timed because it answered wrongly before."""
    have = {r.repeat for r in entry.rounds}
    for r in range(1, fixed_rounds + 1):
        if r not in have:
            reason = "not timed: it answered wrongly before" if entry.invalid else ""
            entry.rounds.append(Round(r, "failed" if entry.invalid else "missing", reason))
    entry.rounds.sort(key=lambda one: one.repeat)


def _progress_line(r: int, fixed: int, label: str, measured: Round) -> str:
    # Parentheses, not brackets: the console would read `[round 1/3]` as markup.
    head = f"round {r}/{fixed} " if r <= fixed else f"round {r} (for precision) "
    head += f"{label}: "
    if measured.status != "ok":
        return head + f"{measured.status}: {measured.reason}"
    cpu = f", {measured.cost_cpu_us:.1f} µs CPU" if math.isfinite(measured.cost_cpu_us) else ""
    return head + (
        f"{measured.peak_qps:,.0f} req/s at c={measured.peak_level}, "
        f"{measured.cost_qps_us:.1f} µs/request{cpu}"
    )
