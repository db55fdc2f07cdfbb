"""What a compare with `--measure latency` adds to its report: a table per rate (every
percentile, what was sustained, the generator's own floor beside), the capacity at an SLO, and
two charts: the percentiles against the rate per set (the hockey stick; at a single rate, the
percentiles along the axis), and p99 per set at one rate with its 95% interval."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.experiments.compare.capacity import missed_at
from harness.load.k6 import rate_label
from harness.measures.latency import PERCENTILES, WARMUP_S
from harness.render.tables import estimate_cell
from harness.stats.intervals import Estimate

if TYPE_CHECKING:
    from harness.experiments.compare.contenders import Entry
    from harness.experiments.compare.result import CompareReport

COLUMNS = (
    "set",
    *(f"{p} ms" for p in PERCENTILES),
    "achieved req/s",
    "dropped",
    "errors",
    "not sustained",
    "Δp99 ms vs",
    "vs",
)
CAPACITY_COLUMNS = (
    "set",
    "capacity req/s",
    "closed-model peak req/s",
    "capacity / peak",
    "bounded by",
    "at capacity",
    "probes",
)


def has_latency(report: CompareReport) -> bool:
    return any(name.startswith("latency:") for name in report.measures)


def generator_rates(report: CompareReport) -> list[dict[str, Any]]:
    """k6 against the ceiling at each rate: the generator's own floor."""
    return (report.settings.generator or {}).get("rates") or []


def _delta(e: Estimate | None) -> str:
    if e is None:
        return "—"
    text = f"{e.median:+.2f}"
    if e.half_width is not None:
        text += f" ± {e.half_width:.2f}" + ("" if e.significant else " (n.s.)")
    return text


def _sum(entry: Entry, name: str) -> str:
    total = sum(entry.values(name))
    return f"{total:,.0f}"


def rate_tables(report: CompareReport) -> list[tuple[str, tuple[str, ...], list[list[str]]]]:
    """(title, columns, rows) per rate."""
    tables = []
    floor = {f["rate"]: f for f in generator_rates(report)}
    for rate in report.settings.rates or []:
        at = rate_label(rate)
        rows = []
        for entry in report.entries:
            p99 = f"latency:p99@{at}"
            rows.append(
                [
                    entry.label,
                    *(estimate_cell(entry.cost(f"latency:{p}@{at}")) for p in PERCENTILES),
                    estimate_cell(entry.cost(f"latency:achieved@{at}"), 0),
                    _sum(entry, f"latency:dropped@{at}"),
                    _sum(entry, f"latency:errors@{at}"),
                    _sum(entry, f"latency:behind@{at}") + f" of {len(entry.ok_rounds)}",
                    _delta(entry.overhead(p99)),
                    entry.reference.label if entry.reference else "—",
                ]
            )
        generator = floor.get(rate)
        if generator is not None:
            rows.append(
                [
                    "(k6 → ceiling)",
                    *(
                        f"{generator[p.replace('.', '')]:.2f}"
                        if generator.get(p.replace(".", "")) is not None
                        else "—"
                        for p in PERCENTILES
                    ),
                    f"{generator['achieved']:,.0f}",
                    str(generator["dropped"]),
                    str(generator["failed"]),
                    f"k6 CPU {100 * (generator['k6_busy'] or 0):.0f}%",
                    "—",
                    "the generator's floor",
                ]
            )
        tables.append(
            (f"latency at {rate:,.0f} req/s (ms from each request's intended start)", COLUMNS, rows)
        )
    return tables


BOUNDS = {
    "server": "the server (the next rate up missed)",
    "generator": "k6 (saturated above)",
    "peak": "the closed-model peak (met there)",
    "none": "—",
    "failed": "—",
}


def capacity_table(report: CompareReport) -> tuple[str, tuple[str, ...], list[list[str]]] | None:
    found: dict[str, Any] = report.settings.capacity or {}
    if not found:
        return None
    rows = []
    for label, one in found.items():
        peak, capacity = one.get("closed_peak"), one.get("capacity")
        if capacity:
            said = f"{capacity:,.0f}" + ("+" if one["bound"] in ("peak", "generator") else "")
        elif one.get("bound") == "generator":
            said = "not found: k6 fell behind"
        else:
            said = one.get("error") or "none within it"
        bound = BOUNDS.get(one.get("bound", ""), "—")
        if one.get("bound") == "server" and (missed := missed_at(one)):
            bound = f"the server ({missed:,.0f} req/s missed)"
        rows.append(
            [
                label,
                said,
                f"{peak:,.0f}" if peak else "—",
                f"{100 * capacity / peak:.0f}%" if peak and capacity else "—",
                bound,
                one.get("at_capacity") or "—",
                str(len(one.get("probes") or [])),
            ]
        )
    return f"capacity within the SLO {report.settings.slo}", CAPACITY_COLUMNS, rows


def latency_sections(report: CompareReport) -> list[tuple[str, tuple[str, ...], list[list[str]]]]:
    if not has_latency(report):
        return []
    capacity = capacity_table(report)
    return [*rate_tables(report), *([capacity] if capacity else [])]


def latency_notes(report: CompareReport) -> list[str]:
    if not has_latency(report):
        return []
    settings = report.settings
    lines = [
        f"Latency: k6 sent each rate on a schedule (constant arrival rate: the open model), "
        f"{settings.duration_s:g}s per rate after a {WARMUP_S:g}s warm-up, each latency from "
        "when its request was due. A stall weighs on every request due during it, as users "
        "feel it; wrk's closed loop sends less while a server stalls, and its latencies hide "
        "the stall (coordinated omission). A rate not sustained (achieved more than 1% short, "
        "iterations dropped, k6 off its schedule by 5 ms at p99) gives no latency and is flagged."
    ]
    shares, peaks = settings.rate_shares, settings.closed_peaks or {}
    if shares and peaks:
        lines.append(
            f"Rates: {', '.join(f'{100 * x:g}%' for x in shares)} of the slowest set's "
            f"closed-model peak (one wrk round each: {min(peaks.values()):,.0f} req/s)."
        )
    generator = settings.generator or {}
    if generator.get("limit"):
        lines.append(
            f"The generator here: k6 sends at most {generator['limit']:,.0f} req/s against the "
            "ceiling server; its own latency at each rate is the (k6 → ceiling) row, the floor "
            "under every set's."
        )
    if settings.capacity:
        lines.append(
            f"Capacity within {settings.slo}: one bounded search per set after the rounds "
            "(at most 7 probes, one k6 run each), under its closed-model peak and 70% of k6's "
            "limit; searched once, so without an interval. `+`: at least (the peak or k6 "
            "bounded it)."
        )
    return lines


def hockey_chart(report: CompareReport, path: Path) -> Path | None:
    """p50, p90 and p99 against the rate, one colour per set, log scale: the hockey stick. At
    a single rate, whose stick would be one column of dots, the percentiles along the x axis."""
    rates = report.settings.rates or []
    if not has_latency(report) or not rates:
        return None
    if len(rates) == 1:
        return _profile_chart(report, rates[0], path)
    import matplotlib.pyplot as plt

    from harness.render.charts import chart_style, literal, save_line_chart

    styles = {"p50": ":", "p90": "--", "p99": "-"}
    with chart_style():
        fig, ax = plt.subplots(figsize=(8, 5))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for k, entry in enumerate(report.entries):
            for p, style in styles.items():
                xs, ys = [], []
                for rate in rates:
                    est = entry.cost(f"latency:{p}@{rate_label(rate)}")
                    if est is not None:
                        xs.append(rate)
                        ys.append(est.median)
                if xs:
                    ax.plot(
                        xs,
                        ys,
                        style,
                        marker="o",
                        markersize=4,
                        color=colors[k % len(colors)],
                        label=literal(f"{entry.label} {p}"),
                    )
        floor = generator_rates(report)
        if floor:
            ax.plot(
                [f["rate"] for f in floor],
                [f["p99"] for f in floor],
                "-",
                color="#999999",
                linewidth=3,
                alpha=0.5,
                label="k6 → ceiling p99 (the floor)",
            )
        ax.set_yscale("log")
        ax.set_xlabel("arrival rate, requests per second (open model)")
        ax.set_ylabel("latency from the intended start, ms")
        return save_line_chart(
            fig,
            ax,
            path,
            title=f"Latency against the rate: {', '.join(report.targets)}",
            note="median of the rounds; a rate not sustained has no point",
        )


# The floor's names for the percentiles (the generator's record, harness.load.k6)
_FLOOR_KEYS = {"p50": "p50", "p90": "p90", "p99": "p99", "p99.9": "p999", "max": "max"}


def _profile_chart(report: CompareReport, rate: float, path: Path) -> Path | None:
    """Each set's percentiles at the one rate, from p50 to the max, log scale: where their
    tails part, beside the generator's own (k6 against the ceiling)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    from harness.render.charts import chart_style, literal, save_line_chart

    at = rate_label(rate)
    xs = list(range(len(PERCENTILES)))
    with chart_style():
        fig, ax = plt.subplots(figsize=(8, 5))
        drawn = False
        for entry in report.entries:
            costs = [entry.cost(f"latency:{p}@{at}") for p in PERCENTILES]
            points = [(x, c.median) for x, c in zip(xs, costs, strict=True) if c is not None]
            if points:
                drawn = True
                ax.plot(*zip(*points, strict=True), "-", marker="o", label=literal(entry.label))
        if not drawn:
            plt.close(fig)
            return None
        floor = next((f for f in generator_rates(report) if f["rate"] == rate), None)
        if floor is not None:
            points = [
                (x, floor[key])
                for x, p in zip(xs, PERCENTILES, strict=True)
                if floor.get(key := _FLOOR_KEYS[p]) is not None
            ]
            if points:
                floor_xs, floor_ys = zip(*points, strict=True)
                ax.plot(
                    floor_xs,
                    floor_ys,
                    "-",
                    color="#999999",
                    linewidth=3,
                    alpha=0.5,
                    label="k6 → ceiling (the floor)",
                )
        ax.set_xticks(xs, list(PERCENTILES))
        ax.set_yscale("log")
        # plain numbers (0.5, 1, 2, 5, 10) rather than powers of ten: latencies span little
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))
        ax.set_xlabel("percentile of the requests' latency")
        ax.set_ylabel("latency from the intended start, ms")
        return save_line_chart(
            fig,
            ax,
            path,
            title=f"Latency at {rate:,.0f} req/s: {', '.join(report.targets)}",
            note="median of the rounds; one rate (give --rate a list for the latency "
            "against the rate)",
        )


def p99_chart(report: CompareReport, path: Path) -> Path | None:
    """p99 per set at the first rate, median and 95% interval."""
    rates = report.settings.rates or []
    if not has_latency(report) or not rates:
        return None
    name = f"latency:p99@{rate_label(rates[0])}"
    measured = [(e, est) for e in report.entries if (est := e.cost(name)) is not None]
    if not measured:
        return None
    import matplotlib.pyplot as plt

    from harness.render.charts import chart_style, literal, save_figure, titles

    with chart_style():
        fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(measured) + 2), 4.4))
        for i, (_, est) in enumerate(measured):
            low = est.median - est.low if est.low is not None else 0.0
            high = est.high - est.median if est.high is not None else 0.0
            ax.bar(
                i,
                est.median,
                0.6,
                color="#1f4e9c",
                alpha=0.85,
                yerr=[[low], [high]],
                capsize=4,
                error_kw={"elinewidth": 1, "ecolor": "#333333"},
            )
        floor = next((f for f in generator_rates(report) if f["rate"] == rates[0]), None)
        if floor is not None and floor.get("p99") is not None:
            ax.axhline(
                floor["p99"],
                color="#999999",
                linestyle="--",
                linewidth=1,
                label="the generator's floor (k6 → ceiling)",
            )
            ax.legend(fontsize=8, frameon=False)
        ax.set_xticks(range(len(measured)))
        ax.set_xticklabels(
            [literal(e.label) for e, _ in measured],
            fontsize=8,
            rotation=30 if len(measured) > 5 else 0,
        )
        ax.set_ylabel("p99 latency, ms")
        subtitle = "median of the rounds, error bars: 95% interval; open model (k6)"
        titles(ax, f"p99 at {rates[0]:,.0f} req/s: {', '.join(report.targets)}", literal(subtitle))
        fig.tight_layout()
        return save_figure(fig, path)
