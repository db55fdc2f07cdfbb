"""The demo's findings: sentences written from the numbers just measured, and the source
document's reference values checked for every stack."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.stats.intervals import welch
from middleware.stack import is_import_path, stack_name

if TYPE_CHECKING:
    from harness.experiments.compare.contenders import Entry
    from harness.experiments.compare.result import CompareReport
    from harness.experiments.demo.run import DemoResult
    from harness.measures.measure import Measure
    from harness.stats.intervals import Estimate

# The source document's reference values for an API server, and its gin findings.
MAX_AVG_LATENCY_MS = 500.0
MIN_SUCCESS_PCT = 99.95
MIN_QPS = 1000.0
SOURCE_ALL_PCT = 13.68
SOURCE_NONE_PCT = 75.02


@dataclass(frozen=True)
class Check:
    label: str
    qps: float
    latency_ms: float | None
    success_pct: float | None

    @property
    def verdicts(self) -> tuple[bool, bool, bool]:
        return (
            self.latency_ms is not None and self.latency_ms < MAX_AVG_LATENCY_MS,
            self.success_pct is not None and self.success_pct >= MIN_SUCCESS_PCT,
            self.qps >= MIN_QPS,
        )

    @property
    def passed(self) -> bool:
        return all(self.verdicts)


def reference_checks(result: DemoResult) -> list[Check]:
    checks = []
    for report in result.reports:
        for entry in report.entries:
            sweep = next((r.sweep for r in reversed(entry.rounds) if r.sweep), None)
            peak = sweep.peak if sweep else None
            if peak is None:
                continue
            checks.append(
                Check(
                    entry.contender.target.name + ":" + entry.contender.set_name,
                    peak.qps,
                    peak.latency_avg_ms,
                    peak.success_pct,
                )
            )
    return checks


def _pct_of_base(report: CompareReport, stack_label: str) -> Entry | None:
    return next((e for e in report.sets if e.label == stack_label and e.pct_of_baseline), None)


def basehttp_lesson(result: DemoResult) -> list[str]:
    """The same no-op middleware, pure ASGI against BaseHTTPMiddleware, from the numbers."""
    from harness.experiments.demo.run import BASEHTTP_NOOP, PURE_NOOP

    for report in result.reports:
        by_stack = {e.contender.stack: e for e in report.sets}
        pure, based = by_stack.get((PURE_NOOP,)), by_stack.get((BASEHTTP_NOOP,))
        m = report.headline
        a = pure.overhead(m.name) if pure is not None else None
        b = based.overhead(m.name) if based is not None else None
        if a is None or b is None:
            continue
        ratio = f", {b.median / a.median:.0f}× as much" if a.significant and a.median > 0 else ""
        if not b.has_interval:
            verdict = "one round gives no interval: the full demo says whether that is noise"
        elif b.significant and b.median > max(a.median, 0) + (b.half_width or 0):
            verdict = (
                "the way a middleware is written costs more than what it does: write pure ASGI "
                "middleware (a class with __call__(scope, receive, send))"
            )
        else:
            verdict = "here the difference is within the noise"
        return [
            f"One middleware that does nothing, written two ways on {report.targets[0]}: as a "
            f"pure ASGI class it costs {a.format(m.digits)} {m.unit} per request, as a "
            f'BaseHTTPMiddleware subclass (what @app.middleware("http") makes) '
            f"{b.format(m.digits)} {m.unit}{ratio}; {verdict}."
        ]
    return []


def django_lesson(result: DemoResult) -> list[str]:
    """Django over WSGI and over ASGI, the same project with a sync view: what its own path
    costs on each, and the difference, the thread hop ASGI makes for sync code."""
    own = {}
    for report in result.reports:
        none = next((e for e in report.sets if not e.contender.stack), None)
        if report.targets[0] in ("django", "django-asgi") and none is not None:
            own[report.targets[0]] = (none, report.headline)
    if len(own) < 2:
        return []
    (wsgi, m), (asgi, _) = own["django"], own["django-asgi"]
    a, b = _own_cost(wsgi, m.name), _own_cost(asgi, m.name)
    if a is None or b is None or wsgi.reference is None or asgi.reference is None:
        return []
    hop = welch(b[1], a[1])
    said = "n/a"
    if hop is not None:
        width = f" ± {hop.half_width:,.{m.digits}f}" if hop.half_width is not None else ""
        said = f"{hop.median:+,.{m.digits}f}{width} {m.unit}" + (
            _unclear(hop) if width else " (one round: no interval)"
        )
    return [
        f"Django with no middleware costs {a[0].format(m.digits)} {m.unit} of {m.title} over "
        f"{wsgi.reference.label} when served over WSGI, and {b[0].format(m.digits)} over "
        f"{asgi.reference.label} over ASGI: the same sync view, {said} per request over ASGI. "
        "That is the hop Django makes for sync code under ASGI (sync_to_async, one thread for "
        "all sync views), and every sync-only middleware adds its own; the seven middlewares "
        "here are async-capable and add none (docs/django.md measures a sync-only one)."
    ]


def _own_cost(entry: Entry, measure: str) -> tuple[Estimate, list[float]] | None:
    """A framework's own cost over its raw baseline, and its paired rounds' differences."""
    reference = entry.reference
    overhead = entry.overhead(measure)
    if reference is None or overhead is None:
        return None
    return overhead, entry.differences(reference, measure)


def latency_lesson(result: DemoResult) -> list[str]:
    """The same no-op middleware two ways, at one arrival rate: p99 from the open model."""
    from harness.experiments.demo.run import BASEHTTP_NOOP, PURE_NOOP

    report = result.latency
    if report is None or not report.settings.rates:
        return []
    by_stack = {e.contender.stack: e for e in report.sets}
    pure, based = by_stack.get((PURE_NOOP,)), by_stack.get((BASEHTTP_NOOP,))
    name = report.measures[0]
    a = pure.cost(name) if pure is not None else None
    b = based.cost(name) if based is not None else None
    rate = report.settings.rates[0]
    if a is None or b is None:
        # A round whose schedule k6 did not keep gives no latency: say so rather than nothing.
        return [
            f"At {rate:,.0f} requests a second, sent on a schedule (k6, the open model), the "
            "rate was not sustained in this run's rounds (a stalled machine, or a server "
            "that could not keep up): no p99 is given for what was not measured."
        ]
    floor = next(
        (f["p99"] for f in (report.settings.generator or {}).get("rates", []) if f["rate"] == rate),
        None,
    )
    said = f" (k6's own p99 against the ceiling: {floor:.2f} ms)" if floor is not None else ""
    return [
        f"At {rate:,.0f} requests a second, sent on a schedule (k6, the open model), p99 from "
        f"each request's intended start is {a.format(2)} ms with "
        f"the no-op middleware as pure ASGI and {b.format(2)} ms as a BaseHTTPMiddleware"
        f"{said}: what users feel of the way a middleware is written, beside what it costs "
        "the CPU."
    ]


def _unclear(estimate: Estimate | None) -> str:
    if estimate is None or not estimate.has_interval or estimate.significant:
        return ""
    return " (not significantly different from zero at 95% in these rounds)"


def _singles(report: CompareReport) -> list[Entry]:
    """The sets of one of our middlewares alone, measured against a reference."""
    return [
        e
        for e in report.sets
        if len(e.contender.stack) == 1
        and not is_import_path(e.contender.stack[0])
        and e.overhead(report.measures[0])
    ]


def _dump_alone(singles: list[Entry], full: Entry, m: Measure) -> str:
    """dump's share of the full stack, where dump is the only single middleware measured (with
    more of them, the next finding ranks them all)."""
    if len(singles) != 1 or singles[0].contender.stack != ("dump",):
        return ""
    dump, whole = singles[0].overhead(m.name), full.overhead(m.name)
    if dump is None or whole is None or whole.median <= 0:
        return ""
    share = 100 * dump.median / whole.median
    return (
        f" dump alone costs {dump.format(m.digits)} {m.unit}{_unclear(dump)}, {share:.0f}% of that."
    )


def _overheads(singles: list[Entry], m: Measure) -> list[tuple[Entry, Estimate]]:
    """Each single middleware with its overhead, the costliest first."""
    found = [(e, o) for e in singles if (o := e.overhead(m.name)) is not None]
    return sorted(found, key=lambda pair: pair[1].median, reverse=True)


def _framework_findings(report: CompareReport) -> list[str]:
    """The framework against its raw baseline, with all seven and with dump; and the single
    middlewares ranked."""
    found: list[str] = []
    m = report.headline
    target = report.targets[0]
    baseline = report.baselines[0] if report.baselines else "its baseline"
    singles = _singles(report)
    none, full = _pct_of_base(report, "none"), _pct_of_base(report, "all")
    if none is not None and full is not None:
        assert none.pct_of_baseline is not None and full.pct_of_baseline is not None
        whole = full.overhead(m.name)
        overhead = whole.format(m.digits) if whole else "n/a"
        found.append(
            f"{target} without middlewares reached {none.pct_of_baseline:.1f}% of "
            f"{baseline}'s peak QPS (gin in the source document: {SOURCE_NONE_PCT}%); "
            f"with all seven middlewares it reached {full.pct_of_baseline:.1f}% "
            f"(gin: {SOURCE_ALL_PCT}%). The full stack costs {overhead} {m.unit} of "
            f"{m.title}{_unclear(whole)}.{_dump_alone(singles, full, m)}"
        )
        sync = report.settings.worker_class == "sync"
        if none.contender.target.interface == "wsgi" and sync and whole and m.timed:
            lost = 100 * (1 - full.pct_of_baseline / none.pct_of_baseline)
            found.append(
                f"{target} runs on gunicorn's sync worker, which accepts a new TCP connection "
                f"for every request: the server's own work is most of each request, so the "
                f"{whole.median:.0f} {m.unit} that all seven middlewares add cost it only "
                f"{lost:.0f}% of its QPS. Per-request CPU time is the fairer measure here; "
                "the gthread worker keeps connections alive."
            )
    ranked = _overheads(singles, m)
    if len(ranked) > 1:
        (top, top_cost), rest = ranked[0], ranked[1:4]
        total = sum(max(0.0, o.median) for _, o in ranked)
        share = 100 * top_cost.median / total if total > 0 else math.nan
        insignificant = [e.label for e, o in ranked if o.has_interval and not o.significant]
        listed = ", ".join(f"{e.label} {o.median:+,.{m.digits}f}" for e, o in rest)
        text = (
            f"In {target}, {top.label} alone costs {top_cost.format(m.digits)} {m.unit} per "
            f"request, {share:.0f}% of what the single middlewares add up to; next come "
            f"{listed} {m.unit}."
        )
        if insignificant:
            text += f" Not significantly different from zero at 95%: {', '.join(insignificant)}."
        found.append(text)
    return found


def findings(result: DemoResult) -> list[str]:
    """One short paragraph per finding, each written from the numbers measured."""
    from harness.experiments.demo.server_axis import server_findings

    found = ceiling_lesson(result)
    for report in result.reports:
        found += _framework_findings(report)
    found += django_lesson(result)
    found += basehttp_lesson(result)
    found += latency_lesson(result)
    found += server_findings(result)
    found += profile_lesson(result)
    found += machine_lesson(result)
    found += reference_lesson(result)
    return found


def ceiling_lesson(result: DemoResult) -> list[str]:
    """The fastest target against the load generator's ceiling: whether the tour measured the
    servers or wrk."""
    fastest = max(
        (e for r in result.reports for e in r.entries if e.peak_qps),
        key=lambda e: e.peak_qps.median if e.peak_qps else 0.0,
        default=None,
    )
    if not result.ceiling_qps or fastest is None or not fastest.peak_qps:
        return []
    share = 100 * fastest.peak_qps.median / result.ceiling_qps
    verdict = (
        "so that result measured wrk as much as the server"
        if share >= 80
        else "well below it, so every result here measured the server, not the load generator"
    )
    return [
        f"The load generator's ceiling on this machine is {result.ceiling_qps:,.0f} req/s "
        f"(a raw uvloop server, pinned apart from wrk). The fastest target, "
        f"{fastest.contender.target.name} with {fastest.contender.set_name}, reached "
        f"{fastest.peak_qps.median:,.0f} req/s, {share:.0f}% of the ceiling: {verdict}."
    ]


def profile_lesson(result: DemoResult) -> list[str]:
    """Where the profile of the costliest stack puts the CPU, and whether dump leads the
    middlewares as in the source document; or why there is no profile."""
    if result.profiled is None and result.profile_error:
        return [f"The profile could not be taken: {result.profile_error}"]
    if result.profiled is None:
        return []
    layers = [s for s in result.profiled.layers if s.samples][:4]
    described = ", ".join(f"{s.layer} {s.pct:.0f}%" for s in layers)
    middleware_share = sum(s.pct for s in result.profiled.layers if s.kind == "middleware")
    top_two = [s.layer for s in result.profiled.layers if s.kind == "middleware"][:2]
    reproduced = "dump" in top_two
    return [
        f"A py-spy profile of {result.profiled.target} with "
        f"{stack_name(result.profiled.stack)} under load puts the CPU here: "
        f"{described}. The middlewares hold {middleware_share:.0f}% of the samples, "
        + (
            "led by dump's JSON pretty-printing: the source document's finding holds in Python too."
            if reproduced
            else f"led by {', '.join(top_two) or 'none'}; the source document's dump-first "
            "finding does not hold here."
        )
    ]


def machine_lesson(result: DemoResult) -> list[str]:
    """What this machine does to the overheads, when harness.machine.system found it."""
    if not result.machine_note:
        return []
    return [
        "This machine's idle CPUs halt at once, so each response that wakes wrk's idle CPU "
        "costs the server microseconds: overheads measured on the event-loop servers "
        "(starlette, aiohttp) come out high, by 20-30% on the VM this project was built on "
        "(`harness calibrate` measures it here). `harness system tune`, as root, fixes that; "
        "`harness system reset` undoes it."
    ]


def reference_lesson(result: DemoResult) -> list[str]:
    """How many stacks meet the source document's reference values for an API server."""
    checks = reference_checks(result)
    if not checks:
        return []
    failing = [c.label for c in checks if not c.passed]
    return [
        f"Against the source document's reference values (average response time < "
        f"{MAX_AVG_LATENCY_MS:.0f} ms, success rate ≥ {MIN_SUCCESS_PCT}%, ≥ "
        f"{MIN_QPS:,.0f} QPS per server): {len(checks) - len(failing)} of {len(checks)} "
        f"measured stacks pass" + (f"; failing: {', '.join(failing)}." if failing else ".")
    ]
