"""What compare writes: the table (terminal and Markdown), compare.json, overhead.png, diffs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from harness.measure.stats import Estimate

if TYPE_CHECKING:
    from harness.load.results import SweepResult
    from harness.measure.contenders import CompareReport, Entry

COLUMNS = (
    "set", "peak QPS", "% of baseline", "µs/req (1/QPS)", "µs/req (CPU)",
    "overhead µs (CPU)", "overhead µs (1/QPS)", "vs", "rounds", "p99 ms", "flags",
)  # fmt: skip
SERVER_COLUMNS = (
    "server", "raw app", "peak QPS", "QPS vs first", "µs/req (1/QPS)", "µs/req (CPU)",
    "vs first µs (CPU)", "vs first µs (1/QPS)",
)  # fmt: skip


def _est(e: Estimate | None, digits: int = 1) -> str:
    return e.format(digits) if e else "—"


def _overhead(e: Estimate | None) -> str:
    if e is None:
        return "—"
    text = f"{e.median:+.1f}"
    if e.half_width is not None:
        text += f" ± {e.half_width:.1f}"
        if not e.significant:
            text += " (not significant)"
    return text


def rows(report: CompareReport) -> list[list[str]]:
    table = []
    for entry in report.entries:
        table.append(
            [
                entry.label,
                f"{entry.peak_qps.median:,.0f}" if entry.peak_qps else "—",
                f"{entry.pct_of_baseline:.1f}%" if entry.pct_of_baseline is not None else "—",
                _est(entry.cost_qps),
                _est(entry.cost_cpu),
                _overhead(entry.overhead_cpu),
                _overhead(entry.overhead_qps),
                entry.reference.label if entry.reference else "—",
                str(len(entry.ok_rounds)),
                f"{entry.p99_ms:.2f}" if entry.p99_ms is not None else "—",
                "; ".join(entry.flags),
            ]
        )
    return table


def title(report: CompareReport) -> str:
    servers = f" on {', '.join(report.servers)}" if report.servers else ""
    return f"compare: {', '.join(report.targets)}{servers}"


def server_rows(report: CompareReport) -> list[list[str]]:
    """The servers against each other on the raw app: each server's cost, and its difference
    from the first server's, paired round by round."""
    table = []
    for row in report.server_rows:
        entry = row.entry
        table.append(
            [
                row.server,
                row.app,
                f"{entry.peak_qps.median:,.0f}" if entry.peak_qps else "—",
                f"{row.qps_ratio:.2f}×" if row.qps_ratio is not None else "—",
                _est(entry.cost_qps),
                _est(entry.cost_cpu),
                _overhead(row.overhead_cpu),
                _overhead(row.overhead_qps),
            ]
        )
    return table


def server_title(report: CompareReport) -> str:
    first = report.servers[0] if report.servers else "the first server"
    return f"servers on the raw app, against {first}"


def rich_table(report: CompareReport) -> Table:
    table = Table(title=title(report), title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("set", "vs", "flags") else "right")
    for row in rows(report):
        table.add_row(*row)
    return table


def server_table(report: CompareReport) -> Table:
    table = Table(title=server_title(report), title_justify="left")
    for column in SERVER_COLUMNS:
        table.add_column(column, justify="left" if column in ("server", "raw app") else "right")
    for row in server_rows(report):
        table.add_row(*row)
    return table


def _md(columns: tuple[str, ...], body: list[list[str]], left: tuple[str, ...]) -> list[str]:
    align = "|" + "|".join(":---" if c in left else "---:" for c in columns) + "|"
    return [
        "| " + " | ".join(columns) + " |",
        align,
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body),
    ]


def notes(report: CompareReport) -> list[str]:
    rounds = report.settings.get("rounds") or report.settings["repeat"]
    lines = [
        f"{rounds} round(s), interleaved; levels "
        f"{report.settings['levels']}, {report.settings['duration_s']:g}s each after a "
        f"{report.settings['warmup_s']:g}s warm-up; {report.settings['pinning']}; "
        f"wall time {report.wall_s:.0f}s.",
        "Overhead = cost minus the `vs` row's cost, paired round by round; ± is the 95% "
        "interval (Student t); one that includes zero is marked not significant.",
    ]
    request = report.settings.get("request") or {}
    if request and (request.get("method"), request.get("path")) != ("GET", "/healthz"):
        lines.append(
            f"The request timed: {request['method']} {request['path']}"
            + (f" with a {request['body_bytes']} B body" if request.get("body_bytes") else "")
            + (f", {len(request['headers'])} header(s)" if request.get("headers") else "")
            + f"; expected status {request.get('expect_status', '2xx')}."
        )
    for name, app in (report.settings.get("apps") or {}).items():
        lines.append(
            f"{name} is your app, {app['app']}: {app['framework']}; its sets toggle its own "
            "middlewares, and its raw baseline is timed on its own GET /healthz."
        )
    target = report.settings.get("precision_us")
    if target is not None:
        budget = report.settings.get("budget_s", 0)
        lines.append(
            f"Precision: rounds went on until every set's 95% half-width (CPU) was at most "
            f"±{target:g} µs, within {budget:g}s: {report.settings.get('rounds', 0)} rounds; "
            + (
                "every set met it."
                if not report.precision_missed
                else f"missed: {'; '.join(report.precision_missed)}."
            )
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
    lines += [f"Over the --max-overhead-us gate: {g}" for g in report.gate_failures]
    return lines


def markdown(report: CompareReport) -> str:
    lines = [f"# {title(report)}", "", *_md(COLUMNS, rows(report), ("set", "vs", "flags")), ""]
    if report.server_rows:
        lines += [
            f"## {server_title(report)}",
            "",
            *_md(SERVER_COLUMNS, server_rows(report), ("server", "raw app")),
            "",
        ]
    return "\n".join([*lines, *(f"- {line}" for line in notes(report)), ""])


def _clip_intervals(ax: Any, ends: list[tuple[float, float, float, float]]) -> bool:
    """Keep the bars readable when a few intervals are far wider than every median (two or
    three noisy rounds): the axes stop at 2.5x the largest median and each cut end is written at
    the edge, so nothing is hidden. True when anything was cut."""
    if not ends:
        return False
    extent = max(max(abs(m) for _, m, _, _ in ends), 1.0)
    low = min(min(lo for _, _, lo, _ in ends), 0.0)
    high = max(max(hi for _, _, _, hi in ends), 0.0)
    bottom, top = max(low, -2.5 * extent), min(high, 2.5 * extent)
    if (bottom, top) == (low, high):
        return False
    pad = 0.08 * (top - bottom)
    ax.set_ylim(bottom - pad, top + pad)
    for x, _, lo, hi in ends:
        if hi > top:
            ax.text(x, top + pad, f"↑{hi:,.0f}", ha="center", va="top", fontsize=7)
        if lo < bottom:
            ax.text(x, bottom - pad, f"↓{lo:,.0f}", ha="center", va="bottom", fontsize=7)
    return True


def rounds_used(entries: list[Entry]) -> str:
    """`3`, or `3-7` where --precision gave some sets more rounds than others."""
    used = sorted({est.n for e in entries if (est := e.overhead_cpu or e.overhead_qps)})
    if not used:
        return "0"
    return f"{used[0]}" if len(used) == 1 else f"{used[0]}-{used[-1]}"


def overhead_chart(report: CompareReport, path: Path) -> Path | None:
    """Bars of per-request overhead with 95% error bars, both measures side by side."""
    measured = [e for e in report.entries if e.overhead_cpu or e.overhead_qps]
    if not measured:
        return None
    import matplotlib.pyplot as plt

    from harness.output.charts import chart_style, literal, save_figure, titles

    with chart_style():
        fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(measured) + 2), 4.6))
        width = 0.38
        ends: list[tuple[float, float, float, float]] = []  # x, median, low, high
        for offset, attr, color, label in (
            (-width / 2, "overhead_cpu", "#1f4e9c", "server CPU time per request"),
            (width / 2, "overhead_qps", "#d62728", "1e6 / QPS"),
        ):
            xs, ys, lo, hi = [], [], [], []
            for i, entry in enumerate(measured):
                est: Estimate | None = getattr(entry, attr)
                if est is None:
                    continue
                xs.append(i + offset)
                ys.append(est.median)
                lo.append(est.median - est.low if est.low is not None else 0.0)
                hi.append(est.high - est.median if est.high is not None else 0.0)
                ends.append((i + offset, est.median, est.median - lo[-1], est.median + hi[-1]))
            ax.bar(
                xs,
                ys,
                width,
                color=color,
                alpha=0.85,
                label=label,
                yerr=[lo, hi],
                capsize=4,
                error_kw={"elinewidth": 1, "ecolor": "#333333"},
            )
        ax.axhline(0, color="#333333", linewidth=0.8)
        clipped = _clip_intervals(ax, ends)
        ax.set_xticks(range(len(measured)))
        ax.set_xticklabels(
            [
                literal(f"{e.label}\nvs {e.reference.label}" if e.reference else e.label)
                for e in measured
            ],
            rotation=30 if len(measured) > 5 else 0,
            ha="right" if len(measured) > 5 else "center",
            fontsize=8,
        )
        ax.set_ylabel("overhead, µs per request")
        rounds = rounds_used(measured)
        titles(
            ax,
            f"Per-request overhead: {title(report).removeprefix('compare: ')}",
            literal(
                f"median of {rounds} paired round(s), error bars: 95% interval"
                + (" (cut at the axes, ends written)" if clipped else "")
                + f"; {report.settings['pinning']}"
            ),
        )
        ax.set_xlim(-0.7, len(measured) - 0.3)
        ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
        return save_figure(fig, path)


def diff_charts(report: CompareReport) -> list[Path]:
    """Each set's last sweep against the first set's, with the sweep's own diff charts."""
    from harness.load.results import Series
    from harness.output.charts import plot_diff

    swept = [(e, _last_sweep(e)) for e in report.entries]
    usable = [(e, s) for e, s in swept if s is not None and s.ok_levels]
    if len(usable) < 2:
        return []
    _, first = usable[0]
    assert first is not None
    files: list[Path] = []
    for _, other in usable[1:]:
        assert other is not None
        files += plot_diff(Series.from_sweep(first), Series.from_sweep(other), report.out_dir)
    return files


def _last_sweep(entry: Entry) -> SweepResult | None:
    for r in reversed(entry.rounds):
        if r.sweep is not None:
            return r.sweep
    return None


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_report(report: CompareReport, charts: bool = True, sweeps: bool = True) -> list[Path]:
    """compare.json and compare.md into the report's directory; with `charts`, overhead.png and,
    with `sweeps`, each contender's last sweep's charts and the diff charts of each against the
    first (a few seconds of matplotlib per contender on a slow machine)."""
    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "compare.json", out / "compare.md"]
    if charts:
        chart = overhead_chart(report, out / "overhead.png")
        if chart is not None:
            files.append(chart)
    if charts and sweeps:
        from harness.output.charts import plot_sweep

        for entry in report.entries:
            last = _last_sweep(entry)
            if last is not None:
                plot_sweep(last)
        files += diff_charts(report)
    report.files = files
    _write_atomic(files[1], markdown(report))
    _write_atomic(
        files[0],
        json.dumps({**report.to_dict(), "files": [str(f) for f in files]}, indent=2) + "\n",
    )
    return files
