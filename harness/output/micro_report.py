"""What micro shows: the table of in-process costs and the notes under it."""

from __future__ import annotations

from rich.table import Table

from harness.measure.micro import EXCLUDED, INCLUDED, MicroReport
from harness.measure.stats import Estimate


def _us(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ci(e: Estimate | None, digits: int = 3) -> str:
    if e is None or e.low is None or e.high is None:
        return "—"
    return f"[{e.low:,.{digits}f}, {e.high:,.{digits}f}]"


def rich_table(report: MicroReport) -> Table:
    table = Table(title="in-process cost per request (µs), median and 95% interval over repeats")
    for column in ("target", "set", "µs/request", "95% CI", "overhead vs none", "95% CI", "N"):
        table.add_column(column, justify="left" if column in ("target", "set") else "right")
    for one in report.targets:
        loop = one.loop.estimate
        table.add_row(
            one.target, "(empty app)", _us(loop.median), _ci(loop), "", "", str(one.loop.requests)
        )
        for s in one.sets:
            e = s.series.estimate
            mark = "" if s.overhead is None or s.overhead.significant else " (n.s.)"
            table.add_row(
                "",
                s.name,
                _us(e.median),
                _ci(e),
                (_us(s.overhead.median) + mark) if s.overhead else "",
                _ci(s.overhead) if s.overhead else "",
                str(s.series.requests),
            )
    return table


def notes(report: MicroReport) -> list[str]:
    lines = []
    for one in report.targets:
        loop = one.loop.estimate
        none = one.none
        extra = ""
        if none is not None:
            own = none.series.estimate.median - loop.median
            extra = f"; the framework's own cost (none − empty): {own:,.3f} µs"
        lines.append(
            f"{one.target}: the measuring loop with an empty {one.interface} app costs "
            f"{loop.median:,.3f} µs/request{extra}"
        )
    interfaces = sorted({one.interface for one in report.targets})
    for interface in interfaces:
        lines.append(f"included ({interface}): {INCLUDED[interface]}")
    lines.append(f"excluded: {EXCLUDED}")
    load = report.environment.get("load_avg") or [0.0]
    cpus = len(report.environment.get("cpus_available") or [1])
    if load[0] > 0.5 * cpus:
        lines.append(
            f"note: load average {load[0]:.2f} on {cpus} CPU(s) at the start: other processes "
            "were running, expect wider intervals"
        )
    lines.append(
        f"repeats: {report.settings['repeat']}, interleaved and rotated; (n.s.): the interval "
        f"includes zero; {report.wall_s:.1f} s"
    )
    return lines
