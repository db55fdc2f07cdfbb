"""What calibrate writes: the check table, its notes, calibration.json and calibration.png."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.experiments.calibrate.run import CalibrationReport
from harness.load.files import write_json
from harness.machine.system import idle_note
from harness.measures.known_check import RULE, CheckRow
from harness.measures.registry import get_measure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from rich.table import Table


def check_table(rows: Sequence[CheckRow], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    unit = rows[0].check.unit if rows else "µs"
    digits = 2 if unit == "µs" else 0
    columns = (
        "set",
        "measure",
        f"known {unit}",
        f"measured {unit}",
        "95% interval",
        f"error {unit}",
        "error %",
        "accepted known",
        "result",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("set", "measure") else "right")
    for row in rows:
        c, m = row.check, row.check.measured
        bounds = c.bounds
        table.add_row(
            row.label,
            row.measure,
            f"{c.known_us:,.{digits}f}" if digits == 0 else f"{c.known_us:g}",
            f"{m.median:,.{digits}f}" if m else "—",
            f"[{m.low:,.{digits}f}, {m.high:,.{digits}f}]" if m and m.has_interval else "—",
            f"{c.error_us:+,.{digits}f}" if c.error_us is not None else "—",
            f"{c.error_pct:+.2f}%" if c.error_pct is not None else "—",
            f"[{bounds[0]:,.{digits}f}, {bounds[1]:,.{digits}f}]" if bounds else "—",
            "pass" if c.passed else "[bold red]FAIL[/]",
        )
    return table


def notes(report: CalibrationReport) -> list[str]:
    s = report.settings
    lines = [
        f"{report.target}: {s['repeat']} round(s) of none + {len(report.points)} "
        f"{report.kind} set(s), interleaved; "
        + (
            f"{s['requests']} requests each"
            if s.get("requests")
            else f"levels {s['levels']}, {s['duration_s']:g}s each after a "
            f"{s['warmup_s']:g}s warm-up"
        )
        + f"; {s['pinning']}; wall time {report.wall_s:.0f}s.",
        f"Measured = overhead over none, paired round by round, median and 95% interval "
        f"(Student t). Pass: {RULE.replace('10%', f'{100 * report.tolerance:g}%')}.",
    ]
    for name in report.measures:
        one, unit = report.fits.get(name), get_measure(name).unit
        if one is not None:
            lines.append(
                f"Fit ({get_measure(name).title}): measured ≈ {one.intercept_us:+,.2f} {unit} + "
                f"{one.slope:.4f} × known."
            )
    per_turn = s.get("instructions_per_turn")
    if per_turn:
        lines.append(
            f"work:N's known cost: N × {per_turn:.2f} instructions, one turn of its loop counted "
            "in-process under callgrind (two runs of 2,000 and 12,000 turns, fixed hash seed)."
        )
    load = report.environment.get("load_avg_start")
    if load:
        lines.append(
            f"Load average at the start {load[0]:.2f}, at the end "
            f"{report.environment.get('load_avg_end', [0.0])[0]:.2f}."
        )
    missed = [row.check for row in report.rows if not row.check.passed and row.check.measured]
    if report.kind == "spin" and missed and all((c.error_us or 0) > 0 for c in missed):
        lines.append(
            "Every miss is above its known cost: the server paid more than the spin. A likely "
            "cause is indirect: once the spin slows the server, wrk's CPU falls idle between "
            "responses and each response pays a cross-CPU wake-up, which costs microseconds "
            "under a hypervisor (docs/middleware.md, 'spin')."
        )
        if idle_note() is not None:
            lines.append(
                "Here idle CPUs halt at once (haltpoll, guest_halt_poll_ns=0): run "
                "`harness system tune` (as root) and calibrate again; `harness system reset` "
                "undoes it."
            )
    lines += [f"Missing: {m}" for m in report.missing]
    return lines


def calibration_chart(report: CalibrationReport, path: Path) -> Path | None:
    """Measured overhead against known cost, both measures, 95% error bars, the identity line
    and the accepted band (± the tolerance of the known cost)."""
    measured = [p for p in report.points if any(c.measured for c in p.checks.values())]
    if not measured:
        return None
    import matplotlib.pyplot as plt

    from harness.render.charts import chart_style, save_laid_out

    top = max(p.known_us for p in report.points)
    with chart_style():
        fig, ax = plt.subplots(figsize=(7.2, 5.6))
        _identity_and_band(ax, top * 1.08, report.tolerance)
        shift = top * 0.012  # side by side, so the two measures' error bars do not overlap
        styles = (("#d62728", "o", -shift), ("#1f4e9c", "s", shift), ("#2ca02c", "^", 0.0))
        for name, style in zip(report.measures, styles, strict=False):
            _measured_points(ax, report, name, style)
        if any(not row.check.passed for row in report.rows):
            ax.plot([], [], "x", color="black", markersize=9, mew=2, label="outside the range")
        _calibration_labels(ax, report, top * 1.08)
        return save_laid_out(fig, path)


def _identity_and_band(ax: Axes, right: float, tolerance: float) -> None:
    """Measured = known from 0 to `right`, and the band a measured cost passes within."""
    line = [0.0, right]
    ax.plot(line, line, color="#333333", linewidth=1, label="identity: measured = known")
    ax.fill_between(
        line,
        [x * (1 - tolerance) for x in line],
        [x * (1 + tolerance) for x in line],
        color="#999999",
        alpha=0.18,
        linewidth=0,
        # A cost passes exactly when its error bar reaches this band.
        label=f"known ± {100 * tolerance:g}%: pass when the error bar reaches it",
    )


def _measured_points(
    ax: Axes, report: CalibrationReport, name: str, style: tuple[str, str, float]
) -> None:
    """One measure's median at each known cost with its 95% error bar, shifted by `dx` of the
    style (color, marker, dx), and a cross over each that missed its band."""
    color, marker, dx = style
    xs, ys, lo, hi, failed = [], [], [], [], []
    for point in report.points:
        check = point.checks[name]
        m = check.measured
        if m is None:
            continue
        xs.append(point.known_us + dx)
        ys.append(m.median)
        lo.append(m.median - m.low if m.low is not None else 0.0)
        hi.append(m.high - m.median if m.high is not None else 0.0)
        if not check.passed:
            failed.append((point.known_us + dx, m.median))
    ax.errorbar(
        xs,
        ys,
        yerr=[lo, hi],
        fmt=marker,
        color=color,
        capsize=4,
        markersize=6,
        elinewidth=1.2,
        label=get_measure(name).title,
    )
    if failed:
        fx, fy = zip(*failed, strict=True)
        ax.plot(fx, fy, "x", color="black", markersize=11, mew=2, linestyle="none")


def _calibration_labels(ax: Axes, report: CalibrationReport, right: float) -> None:
    """A tick at each known cost, the axes' units, the verdict in the title, the legend."""
    from harness.render.charts import literal, titles

    ax.set_xlim(0, right)
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.set_xticks([p.known_us for p in report.points])
    unit = get_measure(report.measures[0]).unit
    ax.set_xlabel(f"known cost of the {report.kind} middleware, {unit} per request")
    ax.set_ylabel(f"measured overhead over none, {unit} per request")
    s = report.settings
    verdict = "pass" if report.passed else "FAIL"
    titles(
        ax,
        f"Calibration: {report.target} — {verdict}",
        literal(
            f"median of {s['repeat']} paired round(s), error bars: 95% interval; "
            f"{s['duration_s']:g}s per level; {s['pinning']}"
        ),
    )
    ax.legend(fontsize=8, frameon=False, loc="upper left")


def write_calibration(report: CalibrationReport, charts: bool = True) -> list[Path]:
    """calibration.json (and calibration.png) beside compare's own files, listed in the report."""
    out = report.out_dir
    files = [out / "calibration.json"]
    if charts:
        chart = calibration_chart(report, out / "calibration.png")
        if chart is not None:
            files.append(chart)
    report.files = [*files, out / "compare.json", out / "compare.md"]
    write_json(files[0], report.to_dict())
    return report.files
