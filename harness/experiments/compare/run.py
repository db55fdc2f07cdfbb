"""`harness compare`: the cost of a framework and of each middleware set, per request, with 95%
intervals, against the raw baseline on the same server stack.

Every (target, middleware set) is a contender. Repeats interleave the contenders (A B A B ...),
each round on a freshly started, pinned server whose answers are validated first. A round reads
each measure (harness.measures.registry) at its saturating (peak QPS) level: by default the
server's CPU time per completed request and `1e6 / QPS` times the server cores. A set's overhead
is its cost minus its reference's (the target's `none` set, or else the raw baseline), round by
round, so the interval is that of paired differences.

In steps: plan_compare (compare.plan: check and resolve), run_compare (the rounds), and the
report, whose estimates are computed from the rounds it stores (compare.result).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from queue import SimpleQueue
from typing import Any

from harness.experiments.compare.capacity import find_capacities
from harness.experiments.compare.contenders import Entry, Round
from harness.experiments.compare.plan import (
    COMPARE_LOAD,
    COMPARE_WSGI_WORKER,
    DEFAULT_OUT_DIR,
    ComparePlan,
    CompareRequest,
    plan_compare,
)
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.round import generator_floor, measure_ceiling, measure_round
from harness.experiments.compare.rounds import Schedule
from harness.load.request import Request
from harness.load.validate import ValidationError
from harness.machine.system import idle_note
from harness.machine.tune import tuned_for_run
from harness.measures.measure import Measure
from harness.serving.servers import ServerError

__all__ = [
    "COMPARE_LOAD",
    "COMPARE_WSGI_WORKER",
    "DEFAULT_OUT_DIR",
    "CompareRequest",
    "compare",
    "measure_ceiling",
    "measure_round",
    "run_compare",
]

NOT_TIMED = "not timed: it answered wrongly before"


def new_report(plan: ComparePlan) -> CompareReport:
    entries = plan.entries()
    return CompareReport(
        targets=list(dict.fromkeys(c.target.name for c in plan.contenders if c.role == "set")),
        baselines=list(
            dict.fromkeys(c.target.name for c in plan.contenders if c.role == "baseline")
        ),
        entries=entries,
        settings=plan.settings(),
        out_dir=plan.out_dir,
        measures=tuple(name for m in plan.measures for name in m.figures(plan.round_load)),
        servers=[server.name for server in plan.servers],
        pythons=[info.python.name for info in plan.pythons],
        variants=[variant.name for variant in plan.variants],
        ceiling_qps=plan.ceiling_qps,
        gate=plan.gate,
        precision=plan.precision,
    )


def _one_round(entry: Entry, r: int, plan: ComparePlan, name: str) -> Round:
    """One measurement of `entry`, its failure kept as a failed round: a wrong answer marks it
    invalid (it is not timed again), a server that would not start or died fails this round."""
    try:
        return measure_round(entry.contender, r, plan, name=name)
    except ValidationError as exc:
        entry.invalid = True
        return Round(r, "failed", f"answered wrongly, not timed: {exc}")
    except ServerError as exc:
        reason = str(exc).splitlines()[0]
        variant = entry.contender.variant
        if variant is not None:  # a variable the server failed on: say which variant set it
            reason += f" (variant {variant}: {plan.variant_by_name(variant).describe()})"
        return Round(r, "failed", reason)


def _rounds(
    report: CompareReport,
    plan: ComparePlan,
    schedule: Schedule,
    started: float,
    echo: Callable[[str], None],
) -> None:
    """Round after round, as the schedule picks the entries, until it picks none; with jobs,
    several entries of a round at once, each on a plan of its own CPUs."""
    numbered = plan.repeat > 1 or plan.precision is not None
    entries = report.entries
    shown = [m for name in report.measures if (m := report.figure(name)).in_table]
    slots = _slots(plan)

    # One round of a contender at a time: queued rounds could otherwise overlap one contender's
    # (two contenders, one slow), and a round's files (its log) are the contender's.
    one_at_a_time = [threading.Lock() for _ in entries]

    def measure(index: int, r: int, position: int) -> None:
        entry = entries[index]
        with one_at_a_time[index]:
            if entry.invalid:  # it answered wrongly in a round that ended after this was queued
                entry.rounds[position] = Round(r, "failed", NOT_TIMED)
                return
            slot = slots.get()
            try:
                run_started = time.monotonic()
                name = entry.contender.file_stem + (f"_r{r}" if numbered else "")
                measured = _one_round(entry, r, slot, name)
                schedule.run_s.append((time.monotonic() - run_started) / plan.jobs)
            finally:
                slots.put(slot)
            entry.rounds[position] = measured
        echo(_progress_line(r, schedule.fixed_rounds, entry.label, measured, shown))

    # Side by side, the fixed rounds are queued as they are picked, with no wait at the end of
    # each (two jobs waiting for a round's last contender left a core idle: with -m each, the
    # last pair is `all` and the raw baseline); a round for precision is picked from the
    # figures of the rounds before it, all of them in. A server started in a pool thread dies
    # with that thread (its parent-death signal), and the pool's threads outlive every round.
    pending: list[Future[None]] = []
    with ThreadPoolExecutor(plan.jobs, thread_name_prefix="mwbench-round") as pool:
        try:
            while True:
                if schedule.rounds >= schedule.fixed_rounds:
                    _wait_for(pending)
                picked = schedule.next(time.monotonic() - started)
                if not picked:
                    break
                r = schedule.rounds
                positions = _placeholders(entries, picked, r)
                if plan.jobs == 1:
                    for index in picked:
                        measure(index, r, positions[index])
                    continue
                pending += [pool.submit(measure, i, r, positions[i]) for i in picked]
            _wait_for(pending)
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)  # the rounds running end first
            raise


def _placeholders(entries: list[Entry], picked: list[int], r: int) -> dict[int, int]:
    """Round r of each picked entry, missing until measured; where each is in its rounds."""
    positions = {}
    for index in picked:
        entries[index].rounds.append(Round(r))
        positions[index] = len(entries[index].rounds) - 1
    return positions


def _wait_for(pending: list[Future[None]]) -> None:
    """Until every queued round is measured (its errors raised here); the list emptied."""
    while pending:
        pending.pop(0).result()


def _slots(plan: ComparePlan) -> SimpleQueue[ComparePlan]:
    """A plan for each job: where the plan pins, job k's server on one CPU and its wrk on the
    next, so that two jobs' servers do not share a core."""
    cpus = sorted({*(plan.serve.cpus or ()), *(plan.load.cpus or ())})
    slots: SimpleQueue[ComparePlan] = SimpleQueue()
    for k in range(plan.jobs):
        if plan.jobs == 1 or not cpus:
            slots.put(plan)
            continue
        serve = plan.serve.replace(cpus=(cpus[k % len(cpus)],))
        load = plan.load.replace(cpus=(cpus[(k + 1) % len(cpus)],))
        slots.put(dataclasses.replace(plan, serve=serve, load=load))
    return slots


NATIVE_ROUNDS = 3  # of each raw baseline at native speed, for the µs an instruction costs


def native_reference(plan: ComparePlan, echo: Callable[[str], None]) -> list[dict[str, Any]]:
    """Each raw baseline's CPU time per request at native speed, measured in the same run, for
    a measure whose figures are also estimated in µs ([] without a raw baseline)."""
    raws = [c for c in plan.contenders if c.role == "baseline" or c.target.is_raw]
    if not raws or not any(m.estimated_in_us for m in plan.measures):
        return []
    echo(
        f"native reference: {', '.join(dict.fromkeys(c.target.name for c in raws))} at native "
        f"speed, {NATIVE_ROUNDS} rounds, for the µs estimates"
    )
    native = _quick(
        plan,
        request=None,  # a raw baseline answers GET /healthz
        targets=list(dict.fromkeys(c.target.name for c in raws)),
        sets=[()],
        baseline=False,
        repeat=NATIVE_ROUNDS,
        measures=("cpu",),
        out_dir=plan.out_dir / "native",
    )
    measured = run_compare(native, echo=lambda line: None)
    return [
        {
            "target": e.contender.target.name,
            "server": e.server,
            "python": e.contender.python,
            "cpu_us": cost.to_dict(),
        }
        for e in measured.entries
        if (cost := e.cost("cpu")) is not None
    ]


def _quick(plan: ComparePlan, *, request: Request | None, **changes: Any) -> ComparePlan:
    """A short native compare beside the plan's, of `request`: 1 s rounds, CPU time, no
    ceiling, untuned; `changes` are CompareRequest's fields."""
    load = COMPARE_LOAD.replace(
        duration=1.0, warmup=0.0, cpus=plan.load.cpus, wrk=plan.load.wrk, request=request
    )
    quick = CompareRequest(
        targets=(),
        sets=(),
        serve=plan.serve,
        load=load,
        servers=plan.servers,
        pythons=plan.pythons,
        measures=("cpu", "qps"),
        ceiling=False,
        tune=False,
    )
    return plan_compare(dataclasses.replace(quick, **changes))


def closed_peaks(plan: ComparePlan, echo: Callable[[str], None]) -> dict[str, float]:
    """Every contender's closed-model peak QPS by label, one quick round of wrk each: what rates
    given as shares are shares of, and where a capacity search starts."""
    echo(f"closed-model peaks of {len(plan.contenders)} contender(s), one wrk round each")
    measured = run_compare(
        _quick(
            plan,
            request=plan.load.request,
            targets=list(dict.fromkeys(c.target for c in plan.contenders if c.role == "set")),
            sets=list(dict.fromkeys(c.stack for c in plan.contenders if c.role == "set")),
            baseline=any(c.role == "baseline" for c in plan.contenders),
            out_dir=plan.out_dir / "peaks",
        ),
        echo=lambda line: None,
    )
    return {e.label: e.peak_qps.median for e in measured.entries if e.peak_qps}


def resolve_rates(
    plan: ComparePlan, peaks: dict[str, float], echo: Callable[[str], None]
) -> ComparePlan:
    """Rates given as shares of the slowest set's closed-model peak made absolute."""
    load = plan.load
    if not load.rate_shares:
        return plan
    sets = {e.label for e in plan.entries() if e.contender.role == "set"}
    found = [peak for label, peak in peaks.items() if label in sets]
    if not found:
        raise ServerError("no set could be swept for its peak, so no rate can be set from it")
    slowest = min(found)
    rates = tuple(sorted({round(share * slowest) for share in load.rate_shares}))
    shares = ", ".join(f"{100 * x:g}%" for x in load.rate_shares)
    echo(f"rates: {', '.join(f'{r:,} req/s' for r in rates)} ({shares} of {slowest:,.0f})")
    return dataclasses.replace(plan, load=load.replace(rates=rates, rate_shares=()))


def _open_model(
    plan: ComparePlan, report: CompareReport, echo: Callable[[str], None]
) -> ComparePlan:
    """The rates resolved and the generator's floor measured; the report's measures become the
    figures the rounds will read (p99 at the first rate the headline)."""
    needed = plan.load.rate_shares or plan.slo is not None
    peaks = closed_peaks(plan, echo) if needed else {}
    report.settings.rate_shares = list(plan.load.rate_shares)
    plan = resolve_rates(plan, peaks, echo)
    report.settings.closed_peaks = peaks
    report.settings.rates = list(plan.round_load.rates)
    report.settings.generator = generator_floor(plan, echo)
    report.read_figures(plan.headline.figures(plan.round_load))
    if plan.precision is not None:
        plan = dataclasses.replace(
            plan, precision=dataclasses.replace(plan.precision, measure=report.measures[0])
        )
    if plan.gate is not None and plan.gate.measure == plan.headline.name:
        plan = dataclasses.replace(
            plan, gate=dataclasses.replace(plan.gate, measure=report.measures[0])
        )
    report.precision, report.gate = plan.precision, plan.gate
    return plan


def run_compare(plan: ComparePlan, *, echo: Callable[[str], None] = print) -> CompareReport:
    """Measure every contender of `plan` in interleaved rounds; each round's sweep files go
    into the plan's directory as it runs. Ctrl-C stops measuring: the report of the rounds that
    finished is returned with `interrupted` set."""
    report = new_report(plan)
    started = time.monotonic()
    echo(
        f"compare: {len(report.entries)} contenders × {_rounds_planned(plan)}, "
        f"{report.settings.pinning}"
    )
    for note in dict.fromkeys(server.note for server in plan.serving.values() if server.note):
        echo(note)
    schedule = Schedule(report.entries, repeat=plan.repeat, precision=plan.precision)
    with tuned_for_run(enabled=plan.tune, echo=echo) as tuned:
        report.settings.tuned_for_run = [c.describe() for c in tuned.changes] if tuned else []
        halt = idle_note()
        if halt is not None:
            echo(halt)
        try:
            if plan.ceiling and plan.ceiling_qps is None and plan.reads_speed:
                report.ceiling_qps = measure_ceiling(
                    serve=plan.serve, load=plan.load, out_dir=plan.out_dir
                )
                if report.ceiling_qps:
                    echo(f"ceiling (the load generator's limit): {report.ceiling_qps:,.0f} req/s")
            report.settings.native_reference = native_reference(plan, echo)
            if plan.headline.procedure == "k6":
                plan = _open_model(plan, report, echo)
                schedule.precision = plan.precision
            _rounds(report, plan, schedule, started, echo)
            if plan.slo is not None:
                found = report.settings.capacity = {}
                peaks, generator = report.settings.closed_peaks, report.settings.generator
                assert peaks is not None and generator is not None  # the open model found them
                find_capacities(
                    plan, report.entries, peaks, generator["limit"], plan.slo, found, echo
                )
        except KeyboardInterrupt:
            report.interrupted = True
    for entry in report.entries:
        _mark_missing(entry, schedule.fixed_rounds)
    report.wall_s = time.monotonic() - started
    report.settings.rounds = schedule.rounds
    # Whether the budget ended the rounds (rather than every set being precise enough).
    report.settings.budget_spent = schedule.budget_spent
    return report


def compare(
    request: CompareRequest | None = None, /, *, echo: Callable[[str], None] = print, **fields: Any
) -> CompareReport:
    """Measure every contender of `request` `repeat` times, interleaved, and return the report
    (compare.render writes it). Without a request, its fields are given as keywords:
    `compare(targets=["flask"], sets=[(), ("all",)])`.

    `targets` are names of the table's targets, or user apps (harness.serving.apps.target_for);
    `sets` the middleware stacks, each measured on each target, and each target's raw baseline
    beside them unless `baseline` is False. `serve` says how the servers run (pin them with
    `cpus`), `load` what wrk sends (its `request`, default GET /healthz, is what each set is
    checked and timed with; a raw baseline beside a user's app is timed on its GET /healthz).

    `servers` (targets.server_table) makes the server an axis: every (server, set) in the same
    interleaved rounds, each against the raw app on the same server, and the servers against
    the first on the raw app (`report.server_rows`). `pythons` (interpreters, virtualenvs'
    pythons: harness.serving.pythons) make the environment an axis the same way, each
    contender against the same one in the first environment (`report.env_rows`); each is
    checked for what it serves before any load. `variants` (harness.serving.variants: a name
    and environment variables) serve every contender with each variant's variables, an axis
    the same way (`report.variant_rows`). `shard` (K, N) measures the K-th of N shares of the
    sets, each with what it is measured against, for a CI matrix (compare.merge joins
    them). `jobs`: contenders measured at once in a round, for measures that count rather than
    time (instructions): as many as the cores by default, 1 for any other. `measures`
    (harness.measures.registry) are what each round reads, the first the headline: the one
    precision and the findings use.

    With `precision`, rounds go on past `repeat` (at least 3) until every set's 95% half-width
    is at most the target or the budget is spent (compare.rounds); `gate` flags the sets
    whose overhead is above its limit (`report.gate_failures`). `tune`: the machine is tuned for
    the run where it distorts overheads and this process may tune it, and put back at the end.
    `ceiling` measures the load generator's limit first (`ceiling_qps` gives it instead).

    With the `latency` measure, the rounds send fixed arrival rates (`load.rates`, or shares of
    the slowest set's closed-model peak; half of it by default) with k6, and with `slo`
    (harness.measures.slo) each set's capacity within it is searched for after the rounds."""
    if request is None:
        request = CompareRequest(**fields)
    elif fields:
        raise TypeError(f"compare() takes a request or its fields, not both: {sorted(fields)}")
    plan = plan_compare(request)
    return run_compare(plan, echo=echo)


def _rounds_planned(plan: ComparePlan) -> str:
    if plan.precision is None:
        return f"{plan.repeat} round(s)"
    target = plan.precision.describe(plan.headline.unit)
    return f"rounds until {target} or {plan.precision.budget_s:.0f} s"


def _mark_missing(entry: Entry, fixed_rounds: int) -> None:
    """The fixed rounds `entry` has no result for: missing (interrupted before them), or not
    timed because it answered wrongly before."""
    have = {r.repeat for r in entry.rounds}
    for r in range(1, fixed_rounds + 1):
        if r not in have:
            reason = NOT_TIMED if entry.invalid else ""
            entry.rounds.append(Round(r, "failed" if entry.invalid else "missing", reason))
    entry.rounds.sort(key=lambda one: one.repeat)


def _progress_line(
    r: int, fixed: int, label: str, measured: Round, measures: Sequence[Measure]
) -> str:
    # Parentheses, not brackets: the console would read `[round 1/3]` as markup.
    head = f"round {r}/{fixed} " if r <= fixed else f"round {r} (for precision) "
    head += f"{label}: "
    if measured.status != "ok":
        return head + f"{measured.status}: {measured.reason}"
    figures: list[str] = []
    for measure in measures:
        value = measured.value(measure.name)
        if math.isfinite(value):
            figures.append(f"{measure.format(value)} {measure.per_unit} ({measure.short})")
    if math.isfinite(measured.peak_qps):
        head += f"{measured.peak_qps:,.0f} req/s at c={measured.peak_level}, "
    return head + ", ".join(figures)
