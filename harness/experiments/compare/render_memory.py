"""What a compare with `--measure memory` adds to its report: the notes (the leak floor, the
smallest slope these rounds tell from zero) and memory.png, RSS against the requests answered,
one line per set, from each set's last round."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from harness.measures.memory import LEAK_FLOOR, MIB, SAMPLE_S

if TYPE_CHECKING:
    from harness.experiments.compare.result import CompareReport

RETAINED = "memory:retained"


def has_memory(report: CompareReport) -> bool:
    return RETAINED in report.measures


def detection_limit(report: CompareReport) -> float | None:
    """The smallest slope these rounds tell from zero: the median of the sets' 95% half-widths
    of their retained bytes (bytes per 1,000 requests)."""
    widths = [hw for e in report.entries if (c := e.cost(RETAINED)) and (hw := c.half_width)]
    return statistics.median(widths) if widths else None


def memory_notes(report: CompareReport) -> list[str]:
    if not has_memory(report):
        return []
    limit = detection_limit(report)
    told = (
        f"these rounds tell a slope of ±{limit:,.0f} B per 1,000 requests from zero (the median "
        "95% half-width)"
        if limit is not None
        else "one round gives no interval: give -r 2 or more for the smallest slope told from zero"
    )
    lines = [
        f"How memory is read: RSS and USS of the serving processes, sampled every "
        f"{1000 * SAMPLE_S:g} ms through each level; retained = the slope of RSS against the "
        f"requests answered, after the first fifth of the level. A set above {LEAK_FLOOR:,.0f} "
        "B per 1,000 requests (50 B a request, above pymalloc's 1 MiB arena steps) in every "
        f"round is flagged as leaking; {told}."
    ]
    failed = [r.reason for e in report.entries for r in e.rounds if "memory ceiling" in r.reason]
    if failed:
        lines.append(f"Stopped at the memory ceiling: {failed[0]}.")
    return lines


def memory_chart(report: CompareReport, path: Path) -> Path | None:
    """RSS against the requests answered, one line per set (its last round's level)."""
    if not has_memory(report):
        return None
    lines = []
    for entry in report.entries:
        last = next((r for r in reversed(entry.rounds) if r.sweep and r.sweep.peak), None)
        if last is None or last.sweep is None or last.sweep.peak is None:
            continue
        peak = last.sweep.peak
        samples = peak.extra.get("memory_samples") or []
        if samples and peak.qps:
            lines.append(
                (entry.label, [s[0] * peak.qps for s in samples], [s[1] / MIB for s in samples])
            )
    if not lines:
        return None
    import matplotlib.pyplot as plt

    from harness.render.charts import chart_style, literal, save_line_chart

    with chart_style():
        fig, ax = plt.subplots(figsize=(8, 4.6))
        for label, xs, ys in lines:
            ax.plot(xs, ys, linewidth=1.4, label=literal(label))
        ax.set_xlabel("requests answered in the level")
        ax.set_ylabel("RSS of the serving processes, MiB")
        return save_line_chart(
            fig,
            ax,
            path,
            title=f"Memory over requests: {', '.join(report.targets)}",
            note="each set's last round; a line that climbs is memory kept",
        )
