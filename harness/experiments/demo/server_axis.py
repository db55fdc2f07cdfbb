"""The demo's server axis: one finding per framework, from the compares that ran it and its raw
app with no middleware on several servers in the same interleaved rounds (its chart is
render_servers's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.experiments.compare.contenders import Entry
    from harness.experiments.compare.result import CompareReport
    from harness.experiments.demo.run import DemoResult


@dataclass(frozen=True)
class OnServer:
    """One server of a server-axis compare: the framework and its raw app on it."""

    server: str
    framework: Entry | None
    raw: Entry | None


def on_servers(report: CompareReport) -> list[OnServer]:
    target = report.targets[0] if report.targets else ""
    found = []
    for server in report.servers:
        mine = [e for e in report.entries if e.server == server]
        framework = next((e for e in mine if e.contender.target.name == target), None)
        raw = next((e for e in mine if e.contender.role == "baseline"), None)
        found.append(OnServer(server, framework, raw))
    return found


def _qps(entry: Entry | None) -> float:
    return entry.peak_qps.median if entry is not None and entry.peak_qps else 0.0


def _cpu(entry: Entry | None) -> str:
    cost = entry.cost("cpu") if entry is not None else None
    return f"{cost.format(0)} µs" if cost else "n/a"


def _all_overhead(result: DemoResult, target: str) -> float | None:
    """What all seven middlewares cost `target` in the demo's own compare of it, if it ran."""
    for report in result.reports:
        for entry in report.sets:
            if entry.contender.target.name == target and entry.label == "all":
                overhead = entry.overhead("cpu")
                return overhead.median if overhead else None
    return None


def server_finding(result: DemoResult, report: CompareReport) -> str | None:
    """The same app on each server: QPS and CPU per request, the raw app alike, and what
    moving to the cheapest server saves against what the middlewares cost."""
    rows = [row for row in on_servers(report) if _qps(row.framework) and _qps(row.raw)]
    if len(rows) < 2:
        return None
    target, raw = report.targets[0], report.baselines[0]
    first = rows[0]
    parts = [f"{first.server} {_qps(first.framework):,.0f} req/s at {_cpu(first.framework)}"]
    for row in rows[1:]:
        ratio = _qps(row.framework) / _qps(first.framework)
        parts.append(
            f"{row.server} {_qps(row.framework):,.0f} ({ratio:.1f}×) at {_cpu(row.framework)}"
        )
    raw_ratios = ", ".join(
        f"{row.server} {_qps(row.raw) / _qps(first.raw):.1f}×" for row in rows[1:]
    )
    kept = ", ".join(
        f"{row.framework.pct_of_baseline:.0f}% on {row.server}"
        for row in rows
        if row.framework is not None and row.framework.pct_of_baseline is not None
    )
    text = (
        f"The same {target} app with no middleware, only the server changed (peak QPS, server "
        f"CPU per request): {'; '.join(parts)}. Its raw app ({raw}), against {first.server}: "
        f"{raw_ratios}. {target} keeps {kept} of the raw app's QPS."
    )
    return text + " " + _verdict(result, target, first, rows[1:])


def _cpu_median(row: OnServer) -> float:
    cost = row.framework.cost("cpu") if row.framework is not None else None
    return cost.median if cost is not None else float("inf")


def _verdict(result: DemoResult, target: str, first: OnServer, others: list[OnServer]) -> str:
    cheapest = min(others, key=_cpu_median)
    assert cheapest.framework is not None and first.framework is not None
    saved = cheapest.framework.difference(first.framework, "cpu")  # paired, round by round
    if saved is None:
        return ""
    if not saved.has_interval:
        return (
            f"Moving {target} from {first.server} to {cheapest.server} changes its CPU per "
            f"request by {saved.median:+.0f} µs (one round: no interval)."
        )
    if not saved.significant:
        return (
            f"Moving {target} from {first.server} to {cheapest.server} changes its CPU per "
            f"request by {saved.format(0)} µs, within the noise of these rounds."
        )
    change = "saves" if saved.median < 0 else "costs"
    text = (
        f"Moving {target} from {first.server} to {cheapest.server} {change} "
        f"{abs(saved.median):.0f} ± {saved.half_width or 0:.0f} µs of CPU per request"
    )
    middlewares = _all_overhead(result, target)
    if middlewares is None or middlewares <= 0:
        return text + "."
    lever = "more" if abs(saved.median) > middlewares else "less"
    return (
        text
        + f", {lever} than all seven middlewares cost it ({middlewares:.0f} µs): "
        + ("the server is the bigger lever." if lever == "more" else "the middlewares matter more.")
    )


def server_findings(result: DemoResult) -> list[str]:
    found = (server_finding(result, report) for report in result.server_reports)
    return [text for text in found if text]
