"""The notes under a compare's table: how it was run, what each measure is and cannot see, how
an estimate was derived, and what is missing or over the gate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.experiments.compare.render_latency import latency_notes
from harness.experiments.compare.render_memory import memory_notes
from harness.measures.instructions import TIME_SHARE_FLAG, largest_time_part
from harness.measures.measure import Measure
from harness.measures.registry import get_measure

if TYPE_CHECKING:
    from harness.experiments.compare.result import CompareReport


def _bases(report: CompareReport) -> list[Measure]:
    """The measures of the run, each once (a latency figure's is `latency`)."""
    return [get_measure(n) for n in dict.fromkeys(n.partition(":")[0] for n in report.measures)]


def shows_estimates(report: CompareReport) -> bool:
    """The headline is also shown in µs, estimated (a native reference was measured)."""
    return report.headline.estimated_in_us and bool(report.settings.native_reference)


def notes(report: CompareReport) -> list[str]:
    settings = report.settings
    rounds = settings.rounds or settings.repeat
    paced = ", each sent once the server was blocked" if settings.paced else ""
    window = (
        f"{settings.requests} requests a round on one connection{paced}, after a warm-up of as many"
        if settings.requests
        else f"levels {settings.levels}, {settings.duration_s:g}s each after a "
        f"{settings.warmup_s:g}s warm-up"
    )
    lines = [
        f"{_rounds_phrase(rounds)}; {window}; {settings.pinning}; wall time {report.wall_s:.0f}s.",
        "Overhead = cost minus the `vs` row's cost, paired round by round; ± is the 95% "
        "interval (Student t); one that includes zero is marked not significant.",
    ]
    for measure in _bases(report):
        lines.append(
            f"{measure.short}: {measure.title}, in {measure.unit}; blind to {measure.blind_to}."
        )
    lines += _estimate_notes(report)
    lines += _time_part_notes(report)
    lines += latency_notes(report)
    lines += memory_notes(report)
    request = settings.request or {}
    if request and (request.get("method"), request.get("path")) != ("GET", "/healthz"):
        lines.append(
            f"The request timed: {request['method']} {request['path']}"
            + (f" with a {request['body_bytes']} B body" if request.get("body_bytes") else "")
            + (f", {len(request['headers'])} header(s)" if request.get("headers") else "")
            + f"; expected status {request.get('expect_status', '2xx')}."
        )
    for name, app in (settings.apps or {}).items():
        lines.append(
            f"{name} is your app, {app['app']}: {app['framework']}; its sets toggle its own "
            "middlewares, and its raw baseline is timed on its own GET /healthz."
        )
    lines += _rounds_notes(report)
    if len(report.variants) > 1:
        lines.append(
            "Variants as an axis: every contender served with each variant's environment "
            "variables, in the same interleaved rounds, each against the same contender in "
            f"{report.variants[0]}; a value that looks like a secret is not recorded."
        )
    if len(report.servers) > 1:
        lines.append(
            "Servers as an axis: each server's sets against the raw app on the same server; "
            f"the servers against each other on the raw app, each against {report.servers[0]}."
        )
    if report.ceiling_qps:
        lines.append(f"The load generator's ceiling here: {report.ceiling_qps:,.0f} req/s.")
    if report.interrupted:
        lines.append("Interrupted: the figures above come from the rounds that finished.")
    lines += [f"Missing: {m}" for m in report.missing]
    lines += [f"Over the gate: {g}" for g in report.gate_failures]
    return lines


def _estimate_notes(report: CompareReport) -> list[str]:
    if not shows_estimates(report):
        return []
    headline = report.headline
    refs = []
    for native in report.settings.native_reference or []:
        raw = next(
            (
                e
                for e in report.entries
                if e.contender.target.name == native["target"]
                and e.server == native["server"]
                and not e.contender.stack
            ),
            None,
        )
        scale = report.us_per_unit(raw) if raw is not None else None
        if raw is not None and scale is not None:
            cost = raw.cost(headline.name)
            refs.append(
                f"{native['target']} on {native['server']}: {native['cpu_us']['median']:.1f} µs "
                f"of CPU per request at native speed, {cost.median:,.0f} {headline.unit} "  # type: ignore[union-attr]
                f"under callgrind: {1e3 * scale:.3f} ns per {headline.unit.rstrip('s')}"
            )
    return [
        "≈ µs (est.) is an estimate, not a measurement: the headline's count times the raw "
        "baseline's CPU time per unit, both measured in this run (" + "; ".join(refs) + "). It "
        "takes every instruction to cost what the raw app's cost on average."
    ]


def _time_part_notes(report: CompareReport) -> list[str]:
    """Where a count's time part, the server's work per second over the window's length, is
    above 1% of it: the figure then leans on that rate, which an idle window measured."""
    lines = []
    for name in dict.fromkeys(n.partition(":")[0] for n in report.measures):
        large = []
        for entry in report.entries:
            largest = largest_time_part([r.values for r in entry.ok_rounds], name)
            if largest is not None and largest.time_share > TIME_SHARE_FLAG:
                share, rate = largest.time_share, largest.per_second
                large.append(f"{entry.label} {100 * share:.1f}% ({rate:,.0f}/s)")
        if large:
            short = report.figure(name).short
            lines.append(
                f"{short}: the server's work per second (its ticks, timers, date header) was "
                f"over {100 * TIME_SHARE_FLAG:g}% of the window's count in {'; '.join(large)}. "
                "It is taken out (its rate, counted in an idle window after each loaded one, "
                "times the loaded window's seconds), so the figure leans on that rate: a share "
                "this large comes of a slow or busy machine, or a server that works while idle."
            )
    return lines


def _rounds_phrase(rounds: int) -> str:
    if rounds == 1:
        return "1 round: no interval (leave --repeat out, or give 3 or more, for one)"
    return f"{rounds} rounds, interleaved"


def _rounds_notes(report: CompareReport) -> list[str]:
    """How the rounds were chosen, and how to get tighter intervals."""
    precision, headline = report.precision, report.headline
    rounds = report.settings.rounds
    if precision is None:
        return []
    missed = report.precision_missed
    if not precision.required:
        tighter = (
            "for tighter intervals, --precision with the half-width you need (e.g. "
            f"--precision {_suggested_width(report)}) and --budget 3m, or --repeat 10"
        )
        if not missed:
            return [
                f"Default rounds: {rounds}, until every overhead ({headline.short}) was clear of "
                f"zero by twice its half-width; {tighter}."
            ]
        return [
            f"Default rounds: {rounds} in {precision.budget_s:g}s; still touching zero or "
            f"near it: {'; '.join(missed)}: {tighter}."
        ]
    return [
        f"Precision: rounds went on until every set's 95% half-width ({headline.short}) was "
        f"at most {precision.describe(headline.unit)}, within {precision.budget_s:g}s: "
        f"{rounds} rounds; "
        + ("every set met it." if not missed else f"missed: {'; '.join(missed)}.")
    ]


def _suggested_width(report: CompareReport) -> str:
    """A --precision a quarter of the widest half-width measured, in the headline's unit."""
    widths = [
        o.half_width
        for e in report.entries
        if (o := e.overhead(report.headline.name)) is not None and o.half_width is not None
    ]
    unit = report.headline.unit
    if not widths:
        return "5us" if unit == "µs" else "1%"
    wanted = max(widths) / 4
    if unit == "µs":
        return f"{wanted:.0f}us" if wanted >= 1 else "1us"
    return f"{wanted:.3g}"
