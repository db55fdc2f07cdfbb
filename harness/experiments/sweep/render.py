"""A sweep on the terminal: one row per level, then what the numbers say is off."""

from __future__ import annotations

from itertools import pairwise

from rich import box
from rich.table import Table

from harness.experiments.sweep.progress import format_ms
from harness.load.results import SweepResult
from harness.load.wrk_output import WrkResult


def _errors(level: WrkResult) -> str:
    return " ".join(f"{n:,} {kind}" for kind, n in level.errors_by_kind if n) or "0"


def summary_table(result: SweepResult, width: int = 160) -> Table:
    """One row per level; below 120 columns p50, max and non-2xx give way (all are in NAME.json)."""
    s = result.settings
    wide = width >= 120
    table = Table(
        title=f"{result.name}: {result.url}  "
        f"({s['duration_s']:g}s per level, -T{s['timeout_s']:g}s)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    columns = ["c", "conns/thr", "QPS", "avg", "p50", "p99", "max", "success", "socket errors"]
    columns += ["non-2xx"]
    if not wide:
        columns = [c for c in columns if c not in ("p50", "max", "non-2xx")]
        columns[columns.index("socket errors")] = "errors"
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True, min_width=7)
    peak = result.peak
    for level in sorted(result.levels, key=lambda lv: lv.concurrency):
        # The reason goes below the table (sweep_notes): a column would fold it to bits.
        status = f"[{'yellow' if level.status == 'skipped' else 'red'}]{level.status}[/]"
        if not level.answered:
            table.add_row(str(level.concurrency), *["—"] * (len(columns) - 1), status)
            continue
        # A level whose answers were all errors still has wrk's numbers: shown, at 0% success.
        style = "green" if level.success_pct >= 99.995 else "yellow" if level.is_ok else "red"
        cells = {
            "c": str(level.concurrency),
            "conns/thr": f"{level.connections}/{level.threads}",
            "QPS": f"[bold]{level.qps:,.0f}[/]" + (" ▲" if level is peak else ""),
            "avg": format_ms(level.latency_avg_ms),
            "p50": format_ms(level.p50_ms),
            "p99": format_ms(level.p99_ms),
            "max": format_ms(level.latency_max_ms),
            "success": f"[{style}]{level.success_pct:.2f}%[/]",
            "socket errors": _errors(level),
            "errors": f"{level.socket_errors + level.non2xx3xx:,}",
            "non-2xx": f"{level.non2xx3xx:,}",
        }
        table.add_row(*(cells[c] for c in columns), "ok" if level.is_ok else status)
    return table


def _levels_with(levels: list[WrkResult]) -> str:
    return ", ".join(
        f"c={lv.concurrency} ({lv.littles_law_ratio:.0%})" for lv in levels if lv.littles_law_ratio
    )


def _stopped_answering(levels: list[WrkResult]) -> str | None:
    """A level with answers and socket errors, then only refused connections: the server went
    away during that level (it crashed, or was stopped), which no single level can say."""
    for before, after in pairwise(levels):
        refused = not after.answered and "refused" in after.reason.lower()
        if before.answered and before.socket_errors and refused:
            return (
                f"the server answered at c={before.concurrency}, then socket errors, then "
                f"refused connections at c={after.concurrency}: it stopped during "
                f"c={before.concurrency} ({before.reason})"
            )
    return None


def sweep_notes(result: SweepResult) -> list[str]:
    """Failures with their reasons, then what the numbers themselves say is off."""
    notes = [f"c={lv.concurrency} {lv.status}: {lv.reason}" for lv in result.levels if not lv.is_ok]
    if stopped := _stopped_answering(result.levels):
        notes.append(stopped)
    measured = result.ok_levels
    # Little's law for wrk's closed loop: connections ≈ QPS × mean latency.
    low = [lv for lv in measured if (lv.littles_law_ratio or 1.0) < 0.75]
    high = [lv for lv in measured if (lv.littles_law_ratio or 1.0) > 1.25]
    if low:
        notes.append(
            f"QPS × mean latency is well below the connections at {_levels_with(low)} "
            "(Little's law): connections spent time outside timed requests (reconnects, "
            "e.g. gunicorn sync; errors) or wrk itself was the bottleneck"
        )
    if high:
        notes.append(
            f"QPS × mean latency exceeds the connections at {_levels_with(high)} "
            "(Little's law): wrk's coordinated-omission correction (stats_correct) adds "
            "synthetic samples for slow responses, so its mean and percentiles overstate "
            "latency when there is a tail; compare QPS, or p50"
        )
    odd = [lv for lv in measured if lv.connections != lv.concurrency]
    notes += [
        f"c={lv.concurrency}: wrk opened {lv.connections} connections "
        f"({lv.threads} threads × {lv.connections // lv.threads})"
        for lv in odd
    ]
    return notes
