"""`harness demo`: the source document's story, reproduced in Python on this machine.

1. the ceiling: how fast wrk can go here, so no result is mistaken for the server's;
2. every framework against its raw baseline, with no middleware and all of them (on Starlette
   each middleware alone, and a no-op one written two ways); Django over WSGI and over ASGI,
   where a sync view costs a thread hop;
3. the server as an axis: Flask and Starlette, and their raw apps, on two servers;
4. latency at a fixed arrival rate (k6, the open model): the no-op middleware written two ways,
   at half the slower one's peak (at most 2,000 req/s);
5. a profile of the costliest stack (the `go tool pprof top -cum` step);
then a report (Markdown and self-contained HTML) whose sentences are written from the numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.experiments.compare.contenders import Entry
from harness.experiments.compare.render import write_report
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.rounds import Precision
from harness.experiments.compare.run import compare, measure_ceiling
from harness.experiments.profile.render import write_profile
from harness.experiments.profile.run import PROFILE_LOAD, ProfileError, ProfileResult, profile
from harness.experiments.sweep.plan import DEFAULT_LOAD, check_out_dir
from harness.load.settings import LoadSettings
from harness.load.wrk import resolve_wrk
from harness.machine.system import idle_note
from harness.machine.tune import tuned_for_run
from harness.serving.settings import DEFAULT_SERVE, ServeSettings
from middleware.stack import ORDER, parse_sets
from targets.table import get_target

DEFAULT_OUT_DIR = Path("_output/demo")


@dataclass(frozen=True)
class DemoPlan:
    # (target, middleware sets): per-middleware detail on one framework, the headlines (dump,
    # all) on every one.
    comparisons: tuple[tuple[str, str], ...]
    repeat: int
    duration: float
    warmup: float
    levels: tuple[int, ...]
    profile_duration: float
    # The whole tour's wall time: what the fixed rounds leave of it is shared by the compares,
    # for the rounds that make their headlines (dump, all) significant. None: fixed rounds.
    budget_s: float | None = None
    # (target, servers): the target and its raw app with no middleware on each server.
    servers: tuple[tuple[str, str], ...] = ()
    # Rounds of the latency step (0: none): the no-op middleware two ways, at one rate.
    latency_rounds: int = 0

    def load(self, load: LoadSettings) -> LoadSettings:
        """The tour's levels and durations, on the CPUs and with the wrk of `load`."""
        return load.replace(
            levels=self.levels, duration=self.duration, warmup=self.warmup, timeout=5.0
        )

    def run_s(self) -> float:
        """One contender's round before any is measured: its wrk run, and starting and checking
        its server (0.3 to 0.9 s here; a measured server is killed, not waited for)."""
        return self.warmup + self.duration + 0.5

    def fixed_s(self, sets: str, run_s: float) -> float:
        """A compare's fixed rounds: every set and the raw baseline, `repeat` times."""
        return (len(parse_sets(sets)) + 1) * self.repeat * run_s

    def latency_step_s(self) -> float:
        """The latency step: k6's limit and floor, then each of the 2 sets' rounds (a server
        started, a second of warm-up, a run); their peaks come from step 2."""
        if not self.latency_rounds:
            return 0.0
        return 4.0 + 2 * self.latency_rounds * (2.0 + self.duration)

    def server_step_s(self, run_s: float) -> float:
        """The server axis: each server runs the framework and its raw app."""
        contenders = sum(2 * len(servers.split(",")) for _, servers in self.servers)
        return contenders * self.repeat * run_s


# The lesson the field keeps learning: one no-op middleware written two ways (middleware/noop.py),
# timed beside Starlette's own sets, by import path.
PURE_NOOP = "middleware.noop:PureAsgiNoop"
BASEHTTP_NOOP = "middleware.noop:BaseHttpNoop"
NOOPS = f"{PURE_NOOP},{BASEHTTP_NOOP}"
LATENCY_SETS = [(PURE_NOOP,), (BASEHTTP_NOOP,)]  # step 4's, at a fixed rate

# What the tour reads of every round: CPU time (the headline), 1/QPS, and the memory the server
# holds (RSS sampled through the same rounds: retained bytes per 1,000 requests, peak RSS).
TOUR_MEASURES = ("cpu", "qps", "memory")

# The server axis: the lever most deployments choose before any middleware; one server beside
# each framework's default (uvicorn alone measures as gunicorn-uvicorn does: the arbiter costs
# nothing per request).
SERVER_AXIS = (("flask", "gunicorn-sync,granian"), ("starlette", "gunicorn-uvicorn,granian"))

# Three rounds, not two: a 95% interval from two paired rounds is 12.7 standard errors wide
# (Student's t, 1 degree of freedom), from three 4.3. No warm-up: wrk runs whole seconds, so one
# would double every round; the validation requests have already exercised each route, and a
# start-up transient is shared by both sides of a paired difference.
# Flask's single middlewares are not in the tour: each costs less than the ±50-140 µs that a
# few rounds of Flask can resolve on a 2-core VM (docs/precision.md), so they read "not
# significant" and took a third of the time; the profile shows their shares instead. Flask goes
# last: its intervals are the widest, and the slices of the budget the others leave come to it.
# Django twice, over WSGI and over ASGI: the same project with a sync view, whose difference is
# the thread hop ASGI makes for sync code (docs/django.md). To leave Django its rounds within the
# three minutes, the other frameworks show none and all (dump alone is in Starlette's each), and
# Django's ASGI side only none: the hop is in Django's own path; the seven are async-capable.
FULL = DemoPlan(
    comparisons=(
        ("starlette", f"each,{NOOPS}"),
        ("fastapi", "none,all"),
        ("aiohttp", "none,all"),
        ("django", "none,all"),
        ("django-asgi", "none"),
        ("flask", "none,all"),
    ),
    repeat=3,
    duration=1.0,
    warmup=0.0,
    levels=(64,),
    profile_duration=3.0,
    budget_s=178.0,
    servers=SERVER_AXIS,
    latency_rounds=2,
)
# The quick tour: the same steps, one round each and no budget, fewer sets.
QUICK = replace(
    FULL,
    comparisons=(
        ("starlette", f"none,all,{NOOPS}"),
        ("fastapi", "none,all"),
        ("aiohttp", "none,all"),
        ("django", "none"),
        ("django-asgi", "none"),
        ("flask", "none,all"),
    ),
    repeat=1,
    profile_duration=2.0,
    budget_s=None,
    latency_rounds=1,
)


@dataclass
class DemoResult:
    out_dir: Path
    plan: DemoPlan
    ceiling_qps: float | None = None
    reports: list[CompareReport] = field(default_factory=list)
    server_reports: list[CompareReport] = field(default_factory=list)  # one per plan.servers row
    latency: CompareReport | None = None  # the no-op middleware two ways, at one arrival rate
    profiled: ProfileResult | None = None
    profile_error: str | None = None
    machine_note: str | None = (
        None  # harness.machine.system's note when this machine distorts overheads
    )
    wall_s: float = 0.0
    files: list[Path] = field(default_factory=list)

    def costliest(self) -> Entry | None:
        """The set whose middlewares cost the most per request (its overhead over the same
        framework with none, in its compare's headline measure): what the profile looks at,
        as the source document profiled its middlewares, not a framework's own path."""
        costs = [
            (overhead.median, e)
            for r in self.reports
            for e in r.sets
            if e.contender.stack and (overhead := e.overhead(r.measures[0])) is not None
        ]
        return max(costs, key=lambda pair: pair[0], default=(0.0, None))[1]


def demo(
    *,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    quick: bool = False,
    serve: ServeSettings = DEFAULT_SERVE,
    load: LoadSettings = DEFAULT_LOAD,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """The tour, served and loaded as `serve` and `load` say (their CPUs and wrk; the tour
    chooses the levels and durations itself)."""
    chosen = QUICK if quick else FULL
    out = Path(out_dir)
    check_out_dir(out)
    resolve_wrk(load.wrk)
    started = time.monotonic()
    with tuned_for_run(echo=echo):
        return _tour(chosen, out, serve, chosen.load(load), echo, started)


def _tour(
    chosen: DemoPlan,
    out: Path,
    serve: ServeSettings,
    load: LoadSettings,
    echo: Callable[[str], None],
    started: float,
) -> DemoResult:
    """The five steps of the module's docstring, in order, each adding to one result."""
    result = DemoResult(out, chosen, machine_note=idle_note())
    tour = _Tour(chosen, out, serve, load, echo, started, result)
    tour.measure_the_ceiling()
    for index, (target, sets) in enumerate(chosen.comparisons):
        tour.compare_with_baselines(index, target, sets)
    for target, servers in chosen.servers:
        tour.compare_servers(target, servers)
    tour.time_latency()
    tour.profile_the_costliest()
    result.wall_s = time.monotonic() - started
    return result


@dataclass
class _Tour:
    """The tour's five steps, each adding what it measured to `result`: served, loaded and
    written under `out` as the tour chose, every step's lines sent to `echo`."""

    plan: DemoPlan
    out: Path
    serve: ServeSettings
    load: LoadSettings
    echo: Callable[[str], None]
    started: float  # the tour's start: the budget of step 2 counts from it
    result: DemoResult
    notes_said: set[str] = field(default_factory=set)

    def indented(self, line: str) -> None:
        """A compare's line, under the step's; each compare repeats its notes about the
        machine, and the tour says each one once."""
        if line.startswith("note:"):
            if line in self.notes_said:
                return
            self.notes_said.add(line)
        self.echo(f"    {line}")

    def measure_the_ceiling(self) -> None:
        self.echo("1/5 the ceiling: how many requests per second can wrk drive on this machine?")
        self.result.ceiling_qps = measure_ceiling(
            serve=self.serve, load=self.load, out_dir=self.out / "ceiling"
        )
        if self.result.ceiling_qps:
            self.echo(f"    ceiling: {self.result.ceiling_qps:,.0f} req/s")

    def compare_with_baselines(self, index: int, target: str, sets: str) -> None:
        """Step 2, the plan's `index`-th compare: `target` with `sets` against its raw
        baseline, in the rounds the tour's budget leaves it."""
        self.echo(f"2/5 frameworks and middlewares vs raw baselines: {target} with {sets}")
        elapsed_s = time.monotonic() - self.started
        report = compare(
            targets=[target],
            sets=parse_sets(sets),
            serve=self.serve,
            load=self.load,
            repeat=self.plan.repeat,
            measures=TOUR_MEASURES,
            out_dir=self.out / target,
            ceiling_qps=self.result.ceiling_qps,
            precision=_headlines(
                self.plan, index, elapsed_s, _run_s(self.result.reports, self.plan)
            ),
            tune=False,  # the tour tuned the machine once, for all of it
            echo=self.indented,
        )
        # The tour shows overhead.png; charts of single-level sweeps would take a third as long
        # as the measuring.
        write_report(report, sweeps=False)
        _stop_if_interrupted(report)
        self.result.reports.append(report)

    def compare_servers(self, target: str, servers: str) -> None:
        """Step 3: `target` and its raw app with no middleware, on each of `servers`."""
        self.echo(f"3/5 the server as an axis: {target} and its raw app on {servers}")
        report = compare(
            targets=[target],
            sets=[()],
            servers=servers.split(","),
            serve=self.serve,
            load=self.load,
            repeat=self.plan.repeat,
            out_dir=self.out / "servers" / target,
            ceiling_qps=self.result.ceiling_qps,
            tune=False,
            echo=self.indented,
        )
        # The report has its own chart of this axis (servers.png): no sweep charts, which
        # take seconds on a slow machine.
        write_report(report, charts=False)
        _stop_if_interrupted(report)
        self.result.server_reports.append(report)

    def time_latency(self) -> None:
        """Step 4, where the plan has it and step 2 measured both no-ops' peaks."""
        rate = _latency_rate(self.result) if self.plan.latency_rounds else None
        if rate is None:
            return
        self.echo(
            f"4/5 latency at a fixed arrival rate (k6, the open model): the no-op middleware "
            f"written two ways, at {rate:,.0f} req/s"
        )
        self.result.latency = _latency_step(
            self.plan, rate, self.out, self.serve, self.load, self.result, self.indented
        )

    def profile_the_costliest(self) -> None:
        """Step 5: py-spy on the set whose middlewares cost the most; a profile that cannot be
        taken is said, not raised."""
        costliest = self.result.costliest()
        if costliest is None:
            return
        target, stack = costliest.contender.target.name, costliest.contender.stack
        self.echo(
            f"5/5 profile of the costliest stack: {target} with {costliest.contender.set_name}"
        )
        load = PROFILE_LOAD.replace(
            duration=self.plan.profile_duration, cpus=self.load.cpus, wrk=self.load.wrk
        )
        try:
            self.result.profiled = profile(
                target=target,
                stack=stack,
                serve=self.serve,
                load=load,
                out_dir=self.out / "profile",
                top=15,
                echo=lambda line: None,
            )
            write_profile(self.result.profiled)
        except ProfileError as exc:
            self.result.profile_error = str(exc)
            self.echo(f"    profile skipped: {exc}")


def _stop_if_interrupted(report: CompareReport) -> None:
    """A compare stopped by Ctrl-C (its rounds so far written) stops the tour too."""
    if report.interrupted:
        raise KeyboardInterrupt


# At most what k6 sends with its own p99 near a millisecond here (docs/latency.md), so the tour
# shows the middleware's tail, not the generator's.
LATENCY_MAX_RATE = 2000


def _latency_rate(result: DemoResult) -> float | None:
    """Half the slower no-op's peak as step 2 measured it (at most LATENCY_MAX_RATE); None
    when step 2 did not measure both."""
    peaks = [
        p.median
        for r in result.reports
        for e in r.sets
        if e.contender.stack in LATENCY_SETS and (p := e.peak_qps) is not None
    ]
    if len(peaks) < 2:
        return None
    return float(min(round(min(peaks) / 2), LATENCY_MAX_RATE))


def _latency_step(
    chosen: DemoPlan,
    rate: float,
    out: Path,
    serve: ServeSettings,
    load: LoadSettings,
    result: DemoResult,
    echo: Callable[[str], None],
) -> CompareReport | None:
    """The no-op middleware, pure ASGI and BaseHTTPMiddleware, at `rate`."""
    from harness.errors import HarnessError

    try:
        report = compare(
            targets=["starlette"],
            sets=LATENCY_SETS,
            serve=serve,
            baseline=False,
            load=load.replace(duration=chosen.duration, rates=(rate,)),
            measures=("latency",),
            repeat=chosen.latency_rounds,
            out_dir=out / "latency",
            ceiling_qps=result.ceiling_qps,
            tune=False,
            echo=echo,
        )
    except HarnessError as exc:  # k6 missing, or unable to send the rate here
        echo(f"latency skipped: {exc}")
        return None
    write_report(report, sweeps=False)
    _stop_if_interrupted(report)
    return report


def _run_s(reports: list[CompareReport], plan: DemoPlan) -> float:
    """A round's wall time, as the compares so far measured it (the plan's guess before any)."""
    runs = sum(len(e.ok_rounds) for r in reports for e in r.entries)
    return sum(r.wall_s for r in reports) / runs if runs else plan.run_s()


def _headlines(plan: DemoPlan, index: int, elapsed_s: float, run_s: float) -> Precision | None:
    """Rounds until dump and all are clear of zero (a half-width at most half the overhead, or
    ±1 µs): compare `index` gets its fixed rounds and up to twice its slice of what the tour's
    budget leaves after every fixed round still ahead. Most compares need nothing more, so what
    one does not use goes to the next, and the last one gets all that is left."""
    if plan.budget_s is None:
        return None
    ahead = plan.comparisons[index:]
    # The server axis and the latency step that follow, the profile that ends the tour, the
    # reports and charts.
    reserve = plan.server_step_s(run_s) + plan.latency_step_s() + plan.profile_duration + 6.0
    fixed = [plan.fixed_s(sets, run_s) for _, sets in ahead]
    spare = max(0.0, plan.budget_s - elapsed_s - reserve - sum(fixed))
    # A WSGI framework gets two slices: on gunicorn its rounds vary three to five times as
    # much as an event loop's (docs/precision.md), and it needs that many more to be clear.
    weights = [2.0 if get_target(target).interface == "wsgi" else 1.0 for target, _ in ahead]
    focus = frozenset({("dump",), ORDER}) & frozenset(parse_sets(ahead[0][1]))
    return Precision(
        target=1.0,
        budget_s=fixed[0] + min(spare, 2 * spare * weights[0] / sum(weights)),
        clear_of_zero=0.5,
        focus=focus,
    )


__all__ = ["DEFAULT_OUT_DIR", "FULL", "QUICK", "DemoResult", "demo"]
