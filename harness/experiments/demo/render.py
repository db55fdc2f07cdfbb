"""The demo's report: its findings, tables and charts, as Markdown and as one self-contained
HTML file (charts embedded)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from harness.experiments.compare.render import columns, server_columns, server_rows, server_title
from harness.experiments.compare.render import rows as compare_rows
from harness.experiments.demo.findings import Check, findings, reference_checks
from harness.experiments.demo.render_servers import servers_chart
from harness.load.files import write_atomic
from middleware.stack import stack_name

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from harness.experiments.compare.contenders import Entry
    from harness.experiments.compare.result import CompareReport
    from harness.experiments.demo.run import DemoResult

    # A framework and its three bars: its raw baseline, no middleware, all of them.
    FrameworkBars = tuple[str, list[tuple[str, Entry | None]]]


def frameworks_chart(result: DemoResult, path: Path) -> Path | None:
    """Peak QPS of each framework's baseline, none and all, against the ceiling."""
    groups = [_framework_bars(report) for report in result.reports]
    if not groups:
        return None
    import matplotlib.pyplot as plt

    from harness.render.charts import chart_style, literal, save_laid_out, titles

    with chart_style():
        fig, ax = plt.subplots(figsize=(9, 4.6))
        top = _draw_frameworks(ax, groups, result.ceiling_qps or 0.0)
        if result.ceiling_qps:
            _ceiling_line(ax, result.ceiling_qps)
        ax.set_ylim(0, top * 1.12)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([literal(t) for t, _ in groups])
        ax.set_ylabel("peak requests per second")
        ax.yaxis.set_major_formatter(lambda v, _p: f"{v / 1000:g}k")
        titles(
            ax,
            "Frameworks against their raw baselines",
            literal(
                "one worker pinned to one CPU, wrk on the other; bars: median, "
                "error bars: 95% interval"
            ),
        )
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        return save_laid_out(fig, path)


def _framework_bars(report: CompareReport) -> FrameworkBars:
    """A framework's raw baseline, its app with no middleware and with all of them."""
    by_label = {e.label: e for e in report.entries}
    base = next((e for e in report.entries if e.contender.role == "baseline"), None)
    bars = [
        (report.baselines[0] if report.baselines else "raw", base),
        ("none", by_label.get("none")),
        ("all", by_label.get("all")),
    ]
    return report.targets[0], bars


def _draw_frameworks(ax: Axes, groups: list[FrameworkBars], top: float) -> float:
    """Each framework's three bars with their 95% error bars and their medians written over
    them; the highest point drawn (at least `top`), for the axes' limit."""
    from harness.render.charts import nonnegative_bar, side_by_side

    colors = ("#7f7f7f", "#1f4e9c", "#d62728")
    width = 0.26
    for g, (_target, bars) in enumerate(groups):
        for b, (label, entry) in enumerate(bars):
            if entry is None or entry.peak_qps is None:
                continue
            est = entry.peak_qps
            x = g + side_by_side(b, len(bars), width)
            legend = ("raw baseline" if b == 0 else label) if g == 0 else None
            high = nonnegative_bar(ax, x, est, width, colors[b], legend)
            ax.text(
                x,
                max(est.median, high),
                f"{est.median / 1000:.1f}k",
                ha="center",
                va="bottom",
                fontsize=8,
            )
            top = max(top, high)
    return top


def _ceiling_line(ax: Axes, ceiling_qps: float) -> None:
    """The most wrk can drive on this machine: no bar can be read above it."""
    ax.axhline(ceiling_qps, color="#2ca02c", linestyle="--", linewidth=1)
    ax.text(
        -0.45,
        ceiling_qps,
        "ceiling (wrk's limit)",
        ha="left",
        va="bottom",
        fontsize=8,
        color="#2ca02c",
    )


def _checks_table(checks: list[Check]) -> list[list[str]]:
    mark = {True: "✓", False: "✗"}
    return [
        [
            c.label,
            f"{c.qps:,.0f}",
            f"{c.latency_ms:.2f}" if c.latency_ms is not None else "—",
            f"{c.success_pct:.2f}" if c.success_pct is not None else "—",
            " ".join(mark[v] for v in c.verdicts),
        ]
        for c in checks
    ]


_CHECK_COLUMNS = (
    "stack",
    "peak QPS",
    "avg latency ms",
    "success %",
    "< 500 ms / ≥ 99.95% / ≥ 1000 QPS",
)


def _md_table(columns: tuple[str, ...], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body),
    ]


def _charts(result: DemoResult) -> list[tuple[str, Path]]:
    charts = []
    if (result.out_dir / "frameworks.png").exists():
        charts.append(("Frameworks against raw baselines", result.out_dir / "frameworks.png"))
    if (result.out_dir / "servers.png").exists():
        charts.append(("The server as an axis", result.out_dir / "servers.png"))
    for report in result.reports:
        overhead = report.out_dir / "overhead.png"
        if overhead.exists():
            charts.append((f"Per-request overhead: {report.targets[0]}", overhead))
    if result.profiled is not None and result.profiled.files.get("flamegraph"):
        charts.append(
            (f"Flame graph: {result.profiled.target}", result.profiled.files["flamegraph"])
        )
    return charts


def _rounds(result: DemoResult) -> str:
    most = max((r.settings.rounds or 0 for r in result.reports), default=0)
    if most <= result.plan.repeat:
        return f"{result.plan.repeat} rounds"
    return f"{result.plan.repeat} rounds, up to {most} for the headlines"


def _latency_tables(result: DemoResult) -> list[tuple[str, tuple[str, ...], list[list[str]]]]:
    from harness.experiments.compare.render_latency import rate_tables

    return rate_tables(result.latency) if result.latency is not None else []


def markdown(result: DemoResult) -> str:
    lines = [
        "# mwbench demo report",
        "",
        f"Measured on this machine in {result.wall_s:.0f} s "
        f"({'quick' if result.plan.repeat == 1 else _rounds(result)}, "
        f"{result.plan.duration:g} s per run).",
        "",
        "## Findings",
        "",
    ]
    lines += [f"- {f}" for f in findings(result)]
    for report in result.reports:
        lines += [
            "",
            f"## {report.targets[0]}",
            "",
            *_md_table(columns(report), compare_rows(report)),
        ]
    for report in result.server_reports:
        lines += [
            "",
            f"## {report.targets[0]} on {', '.join(report.servers)}",
            "",
            *_md_table(columns(report), compare_rows(report)),
            "",
            f"{server_title(report)}:",
            "",
            *_md_table(server_columns(report), server_rows(report)),
        ]
    for name, cols, body in _latency_tables(result):
        lines += ["", f"## {name}", "", *_md_table(cols, body)]
    checks = reference_checks(result)
    if checks:
        lines += ["", "## Reference values", "", *_md_table(_CHECK_COLUMNS, _checks_table(checks))]
    if result.profiled is not None:
        lines += [
            "",
            f"## Profile: {result.profiled.target}",
            "",
            *_md_table(
                ("layer", "kind", "samples", "%"),
                [[s.layer, s.kind, str(s.samples), f"{s.pct:.1f}"] for s in result.profiled.layers],
            ),
        ]
    lines += ["", "## Charts", ""]
    lines += [f"![{title}]({path.relative_to(result.out_dir)})" for title, path in _charts(result)]
    return "\n".join(lines) + "\n"


_CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d1d1f;
max-width:1100px;margin:2rem auto;padding:0 1.2rem;background:#fafafa}
h1{font-size:1.8rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;
padding-bottom:.3rem}.meta{color:#666}
.finding{background:#fff;border-left:4px solid #1f4e9c;padding:.6rem 1rem;margin:.7rem 0;
box-shadow:0 1px 2px rgba(0,0,0,.06)}
.wide{overflow-x:auto;margin:.5rem 0}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%}
th,td{padding:.35rem .5rem;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f0f2f5}
.folded{color:#555;font-size:13px;margin-top:.2rem}
figure{background:#fff;margin:1rem 0;padding:1rem;box-shadow:0 1px 2px rgba(0,0,0,.06)}
figure img{max-width:100%}figcaption{color:#555;font-size:13px}
"""


# How Estimate.format_change (harness.stats.intervals) marks a difference whose interval includes 0
NOT_SIGNIFICANT = "(not significant)"
EMPTY = ("", "—")


def folded(
    columns: tuple[str, ...], body: list[list[str]]
) -> tuple[tuple[str, ...], list[list[str]], str]:
    """The columns with something to show in some row, the rows cut to them, and a note naming
    the others: empty in every row, or not significant in every row that has a value (the demo's
    memory overheads, mostly). The first column, which names the rows, stays."""
    empty: list[str] = []
    unclear: list[str] = []
    kept = [0]
    for k, column in enumerate(columns[1:], start=1):
        cells = [row[k].strip() for row in body]
        if all(cell in EMPTY for cell in cells):
            empty.append(column)
        elif body and all(c in EMPTY or c.endswith(NOT_SIGNIFICANT) for c in cells):
            unclear.append(column)
        else:
            kept.append(k)
    said = []
    if unclear:
        said.append(f"not significant in any row: {', '.join(unclear)}")
    if empty:
        said.append(f"empty in every row: {', '.join(empty)}")
    note = f"Not shown, {'; '.join(said)} (report.md has every column)." if said else ""
    return tuple(columns[k] for k in kept), [[row[k] for k in kept] for row in body], note


def _cell(text: str) -> str:
    # A narrow column breaks a value before its interval ("39.7" over "± 13.1"), not within it.
    return html.escape(text).replace("± ", "±&nbsp;")


def _html_table(columns: tuple[str, ...], body: list[list[str]]) -> str:
    """A table that fits the page: the columns with nothing to show folded into a note below
    it, and what is still wider than the page scrolled within its box, not cut off."""
    columns, body, note = folded(columns, body)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in body)
    table = f"<div class=wide><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return table + "</div>" + (f"<p class=folded>{html.escape(note)}</p>" if note else "")


def _embedded(path: Path) -> str:
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def html_page(result: DemoResult) -> str:
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>mwbench demo report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>What do Python frameworks and middlewares cost per request?</h1>",
        f"<p class=meta>mwbench demo, measured on this machine in {result.wall_s:.0f} s; "
        f"ceiling {result.ceiling_qps or 0:,.0f} req/s.</p>",
        "<h2>Findings</h2>",
        *(f"<p class=finding>{html.escape(f)}</p>" for f in findings(result)),
    ]
    charts = _charts(result)
    if charts:
        title, path = charts[0]
        parts.append(_html_figure(html.escape(title), path, html.escape(title)))
    parts += _html_compares(result)
    parts += _html_servers(result)
    parts += _html_latency(result)
    checks = reference_checks(result)
    if checks:
        parts += ["<h2>Reference values</h2>", _html_table(_CHECK_COLUMNS, _checks_table(checks))]
    parts += _html_profile(result)
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_figure(alt: str, path: Path, caption: str) -> str:
    """A chart embedded in the page; `alt` and `caption` are HTML already."""
    return (
        f"<figure><img alt='{alt}' src='{_embedded(path)}'>"
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _html_compares(result: DemoResult) -> list[str]:
    """Each framework's compare: its table, and its overhead chart where it has one."""
    parts = []
    for report in result.reports:
        parts += [
            f"<h2>{html.escape(report.targets[0])}</h2>",
            _html_table(columns(report), compare_rows(report)),
        ]
        chart = report.out_dir / "overhead.png"
        if chart.exists():
            caption = f"Per-request overhead, {html.escape(report.targets[0])}"
            parts.append(_html_figure("overhead", chart, caption))
    return parts


def _html_servers(result: DemoResult) -> list[str]:
    """The server axis: each framework's compare across servers, the servers against each
    other, and their chart."""
    parts = []
    for report in result.server_reports:
        parts += [
            f"<h2>{html.escape(report.targets[0])} on {html.escape(', '.join(report.servers))}"
            "</h2>",
            _html_table(columns(report), compare_rows(report)),
            f"<p>{html.escape(server_title(report))}</p>",
            _html_table(server_columns(report), server_rows(report)),
        ]
    chart = result.out_dir / "servers.png"
    if result.server_reports and chart.exists():
        caption = "The server as an axis: peak QPS and CPU per request"
        parts.append(_html_figure("servers", chart, caption))
    return parts


def _html_latency(result: DemoResult) -> list[str]:
    """Latency at fixed arrival rates: its tables, and its chart where it has one."""
    parts = []
    for name, cols, body in _latency_tables(result):
        parts += [f"<h2>{html.escape(name)}</h2>", _html_table(cols, body)]
    if result.latency is not None and (result.latency.out_dir / "latency.png").exists():
        caption = "Latency against the arrival rate (k6, open model)"
        parts.append(_html_figure("latency", result.latency.out_dir / "latency.png", caption))
    return parts


def _html_profile(result: DemoResult) -> list[str]:
    """Where the profiled stack spent its CPU, by layer, and its flame graph."""
    profiled = result.profiled
    if profiled is None:
        return []
    parts = [
        f"<h2>Profile: {html.escape(profiled.target)} with "
        f"{html.escape(stack_name(profiled.stack))}</h2>",
        _html_table(
            ("layer", "kind", "samples", "%"),
            [[s.layer, s.kind, str(s.samples), f"{s.pct:.1f}"] for s in profiled.layers],
        ),
    ]
    flame = profiled.files.get("flamegraph")
    if flame is not None and flame.exists():
        parts.append(_html_figure("flame graph", flame, "Flame graph (py-spy)"))
    return parts


def write_demo_report(result: DemoResult) -> list[Path]:
    out = result.out_dir
    frameworks_chart(result, out / "frameworks.png")
    servers_chart(result, out / "servers.png")
    md, page = out / "report.md", out / "report.html"
    write_atomic(md, markdown(result))
    write_atomic(page, html_page(result))
    return [md, page]
