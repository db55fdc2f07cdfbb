"""What micro shows: the table of in-process costs and the notes under it."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from harness.experiments.micro import EXCLUDED, INCLUDED, MicroReport
from harness.experiments.micro.result import SetResult, TargetResult
from harness.experiments.micro.variant_children import VariantCost
from harness.experiments.profile.attribution import module_path
from harness.stats.intervals import Estimate


def _us(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ci(e: Estimate | None, digits: int = 3) -> str:
    if e is None or e.low is None or e.high is None:
        return "—"
    return f"[{e.low:,.{digits}f}, {e.high:,.{digits}f}]"


def rich_table(report: MicroReport) -> Table:
    unit = report.unit
    table = Table(
        title=f"in-process cost per request ({unit}), median and 95% interval over repeats"
    )
    digits = 0 if unit == "instructions" else 3
    for column in ("target", "set", f"{unit}/request", "95% CI", "overhead vs none", "95% CI", "N"):
        table.add_column(column, justify="left" if column in ("target", "set") else "right")
    for one in report.targets:
        loop = one.loop.estimate
        table.add_row(
            one.target,
            "(empty app)",
            _us(loop.median, digits),
            _ci(loop, digits),
            "",
            "",
            str(one.loop.requests),
        )
        for s in one.sets:
            e = s.series.estimate
            mark = "" if s.overhead is None or s.overhead.significant else " (n.s.)"
            table.add_row(
                "",
                s.name,
                _us(e.median, digits),
                _ci(e, digits),
                (_us(s.overhead.median, digits) + mark) if s.overhead else "",
                _ci(s.overhead, digits) if s.overhead else "",
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
            extra = f"; the framework's own cost (none − empty): {own:,.3f} {report.unit}"
        lines.append(
            f"{one.target}: the measuring loop with an empty {one.interface} app costs "
            f"{loop.median:,.3f} {report.unit}/request{extra}"
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


def layer_shares(one: TargetResult, s: SetResult, top: int = 4) -> str:
    """Each layer's share of the bytes a set allocates, as a profile's samples are attributed
    (profile.attribution: the innermost frame that belongs to a layer owns them)."""
    from collections import Counter

    from harness.experiments.profile.attribution import DEFAULT_RULES, attribute
    from harness.experiments.profile.collapsed import Frame, Stack
    from harness.experiments.profile.reading import rules_for

    if s.allocations is None or not s.allocations.stacks:
        return "—"
    stacks: Counter[Stack] = Counter()
    for frames, size in s.allocations.stacks:
        stacks[tuple(Frame(f, module_path(file), line) for f, file, line in frames)] += size
    rules = rules_for(one.spec, s.stack) if one.spec is not None else DEFAULT_RULES
    shares = [x for x in attribute(stacks, s.stack, rules) if x.samples]
    return ", ".join(f"{x.layer} {x.pct:.0f}%" for x in shares[:top])


def allocation_table(report: MicroReport) -> Table | None:
    """With `--memory`: blocks and bytes allocated per request, what is kept, by whom."""
    if not report.settings.get("memory"):
        return None
    table = Table(
        title="in-process allocations per request (memray), the difference of a "
        "short and a long window"
    )
    for column in (
        "target",
        "set",
        "blocks/req",
        "KB/req",
        "Δ KB vs none",
        "retained B / 1,000 req",
        "leaking",
        "bytes by layer",
    ):
        table.add_column(
            column,
            justify="left" if column in ("target", "set", "leaking", "bytes by layer") else "right",
        )
    for one in report.targets:
        none = one.none.allocations if one.none is not None else None
        for i, s in enumerate(one.sets):
            a = s.allocations
            if a is None:
                continue
            delta = f"{(a.bytes - none.bytes) / 1024:+,.2f}" if none and s.stack else ""
            table.add_row(
                one.target if i == 0 else "",
                s.name,
                f"{a.blocks:,.1f}",
                f"{a.bytes / 1024:,.2f}",
                delta,
                f"{a.retained:,.0f}",
                "LEAKING" if a.leaking else "no",
                layer_shares(one, s),
            )
    return table


def variant_table(rows: list[VariantCost], reports: dict[str, dict[str, Any]]) -> Table:
    """Each set in each variant, and its change from the first variant (Welch)."""
    unit = next(iter(reports.values()))["unit"].removesuffix("_per_request").replace("us", "µs")
    digits = 0 if unit == "instructions" else 3
    first = next(iter(reports))
    table = Table(title=f"in-process cost per request ({unit}) per variant, against {first}")
    for column in ("target", "set", "variant", f"{unit}/request", "change", "95% CI"):
        table.add_column(
            column, justify="left" if column in ("target", "set", "variant") else "right"
        )
    for row in rows:
        change = row.change
        mark = "" if change is None or change.significant else " (n.s.)"
        table.add_row(
            row.target,
            row.set_name,
            row.variant,
            row.cost.format(digits),
            f"{change.median:+,.{digits}f}{mark}" if change else "—",
            _ci(change, digits) if change else "",
        )
    return table
