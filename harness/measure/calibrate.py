"""`harness calibrate`: measure middlewares whose cost is known, and say whether the harness
finds it.

The `spin:N` middleware burns exactly N of its thread's CPU time per request (middleware.core
.spinner). calibrate runs compare() on one target with the sets `none, spin:N1, spin:N2, ...`,
without the raw baseline, and checks each spin's measured overhead over `none`, for both of
compare's cost measures (1e6/QPS per server core, and server CPU time per request), against its
known cost.

The check (`check_cost`, also used by `harness micro`): a known cost passes when it lies inside
the measured 95% interval widened on each side by the tolerance (10%) of the known cost:

    low - 0.10 * known  <=  known  <=  high + 0.10 * known

so a measurement passes when it is right to within 10% of the answer, or when the answer is
inside its interval. A measure without an interval (a single round) is checked against its
median ± 10% of the known cost; a measure that was not taken fails.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.machine.system import idle_note
from harness.measure.stats import Estimate
from middleware.stack import SPIN_SYNTAX, BadSpin, parse_spin, spin_label
from targets.table import get_target

if TYPE_CHECKING:
    from rich.table import Table

    from harness.measure.compare import CompareReport, Entry

DEFAULT_OUT_DIR = Path("_output/calibrate")
DEFAULT_COSTS = "5,20,50"
DEFAULT_REPEAT = 3
DEFAULT_DURATION = 3.0
DEFAULT_WARMUP = 1.0
TOLERANCE = 0.10
RULE = "known inside [low - 10% of known, high + 10% of known] of the measured 95% interval"

# compare's two cost measures: Entry attribute, key in calibration.json, how the table says it.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("overhead_qps", "qps", "1e6/QPS per server core"),
    ("overhead_cpu", "cpu", "server CPU time per request"),
)


# --------------------------------------------------------------------------------------------------
# The check, shared with `harness micro`


@dataclass(frozen=True)
class CostCheck:
    """A known cost (µs) against its measured estimate (µs): pass when the known cost lies in
    the measured interval widened by `tolerance` of the known cost on each side."""

    known_us: float
    measured: Estimate | None
    tolerance: float = TOLERANCE

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The accepted range of the known cost: the widened interval."""
        m = self.measured
        if m is None:
            return None
        slack = self.tolerance * abs(self.known_us)
        low = m.low if m.low is not None else m.median
        high = m.high if m.high is not None else m.median
        return low - slack, high + slack

    @property
    def passed(self) -> bool:
        bounds = self.bounds
        return bounds is not None and bounds[0] <= self.known_us <= bounds[1]

    @property
    def error_us(self) -> float | None:
        return None if self.measured is None else self.measured.median - self.known_us

    @property
    def error_pct(self) -> float | None:
        error = self.error_us
        return None if error is None or not self.known_us else 100 * error / self.known_us

    def describe(self) -> str:
        """One phrase for a failure message."""
        bounds = self.bounds
        if self.measured is None or bounds is None:
            return f"known {self.known_us:g} µs, not measured"
        return (
            f"known {self.known_us:g} µs, measured {self.measured.median:.2f} µs, "
            f"outside [{bounds[0]:.2f}, {bounds[1]:.2f}]"
        )

    def to_dict(self) -> dict[str, Any]:
        m = self.measured
        bounds = self.bounds
        return {
            "known_us": self.known_us,
            "median_us": _round(m.median) if m else None,
            "low_us": _round(m.low) if m else None,
            "high_us": _round(m.high) if m else None,
            "n": m.n if m else 0,
            "error_us": _round(self.error_us),
            "error_pct": _round(self.error_pct, 2),
            "accepted_low_us": _round(bounds[0]) if bounds else None,
            "accepted_high_us": _round(bounds[1]) if bounds else None,
            "passed": self.passed,
        }


def check_cost(
    known_us: float, measured: Estimate | None, tolerance: float = TOLERANCE
) -> CostCheck:
    return CostCheck(known_us, measured, tolerance)


@dataclass(frozen=True)
class CheckRow:
    """One line of a calibration table: what was measured (`label`), how, and its check."""

    label: str
    measure: str
    check: CostCheck

    def failure(self) -> str:
        return f"{self.label} ({self.measure}): {self.check.describe()}"


def check_table(rows: Sequence[CheckRow], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = ("spin", "measure", "known µs", "measured µs", "95% interval", "error µs",
               "error %", "accepted known", "result")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("spin", "measure") else "right")
    for row in rows:
        c, m = row.check, row.check.measured
        bounds = c.bounds
        table.add_row(
            row.label,
            row.measure,
            f"{c.known_us:g}",
            f"{m.median:.2f}" if m else "—",
            f"[{m.low:.2f}, {m.high:.2f}]" if m and m.has_interval else "—",
            f"{c.error_us:+.2f}" if c.error_us is not None else "—",
            f"{c.error_pct:+.1f}%" if c.error_pct is not None else "—",
            f"[{bounds[0]:.2f}, {bounds[1]:.2f}]" if bounds else "—",
            "pass" if c.passed else "[bold red]FAIL[/]",
        )
    return table


def failure_message(rows: Sequence[CheckRow], what: str = "calibration") -> str | None:
    """The one-line message for a non-zero exit, None when every check passed."""
    failed = [row.failure() for row in rows if not row.check.passed]
    if not failed:
        return None
    return f"{what} failed ({len(failed)} of {len(rows)}; {RULE}): " + "; ".join(failed)


# --------------------------------------------------------------------------------------------------
# Costs


def parse_costs(text: str) -> tuple[int, ...]:
    """`5,20,50` (µs), or with units (`5us,1.5ms`) -> nanoseconds, ascending, no repeats.
    BadSpin (a ValueError) names the syntax."""
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if not parts:
        raise BadSpin(f"no cost given; costs are N or N with us or ms, as in {SPIN_SYNTAX}")
    costs = set()
    for part in parts:
        value = part if part.endswith(("us", "µs", "ms")) else part + "us"
        try:
            costs.add(parse_spin(f"spin:{value}"))
        except BadSpin:
            raise BadSpin(
                f"bad cost {part!r}: a number of µs (5, 20.5) or with a unit (5us, 1.5ms), "
                "from 1us to 1000ms"
            ) from None
    return tuple(sorted(costs))


# --------------------------------------------------------------------------------------------------
# The report


@dataclass
class Fit:
    """Least squares over the costs: measured ≈ intercept + slope × known. A slope of 1 says
    the harness's scale is right; the intercept is what every spin adds beyond its busy-wait
    (its layer's own dispatch, and on aiohttp the cost of having any middleware at all)."""

    slope: float
    intercept_us: float

    def to_dict(self) -> dict[str, float]:
        return {"slope": round(self.slope, 4), "intercept_us": round(self.intercept_us, 3)}


def fit(points: Sequence[tuple[float, float]]) -> Fit | None:
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return Fit(slope, my - slope * mx)


@dataclass
class CalibrationPoint:
    """One known cost and its checks, one per measure (key: "qps", "cpu")."""

    cost_ns: int
    checks: dict[str, CostCheck]

    @property
    def label(self) -> str:
        return spin_label(self.cost_ns)

    @property
    def known_us(self) -> float:
        return self.cost_ns / 1000

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.label,
            "known_us": self.known_us,
            **{key: self.checks[key].to_dict() for _, key, _ in MEASURES},
        }


@dataclass
class CalibrationReport:
    target: str
    points: list[CalibrationPoint]
    settings: dict[str, Any]
    environment: dict[str, Any]
    compare: CompareReport
    out_dir: Path
    tolerance: float = TOLERANCE
    wall_s: float = 0.0
    files: list[Path] = field(default_factory=list)

    @property
    def rows(self) -> list[CheckRow]:
        return [
            CheckRow(point.label, text, point.checks[key])
            for point in self.points
            for _, key, text in MEASURES
        ]

    @property
    def fits(self) -> dict[str, Fit | None]:
        return {
            key: fit(
                [
                    (p.known_us, p.checks[key].measured.median)  # type: ignore[union-attr]
                    for p in self.points
                    if p.checks[key].measured is not None
                ]
            )
            for _, key, _ in MEASURES
        }

    @property
    def missing(self) -> list[str]:
        return self.compare.missing

    @property
    def passed(self) -> bool:
        return not self.missing and all(row.check.passed for row in self.rows)

    def failure(self) -> str | None:
        """The one-line reason to exit non-zero, None when the calibration passed."""
        message = failure_message(self.rows, f"calibration of {self.target}")
        if message is None and self.missing:
            message = f"calibration of {self.target}: {len(self.missing)} round(s) missing"
        return message

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "calibration",
            "target": self.target,
            "unit": "us_per_request",
            "rule": RULE.replace("10%", f"{100 * self.tolerance:g}%"),
            "tolerance": self.tolerance,
            "measures": {key: text for _, key, text in MEASURES},
            "settings": self.settings,
            "environment": self.environment,
            "costs": [p.to_dict() for p in self.points],
            "fit": {k: f.to_dict() if f else None for k, f in self.fits.items()},
            "passed": self.passed,
            "failure": self.failure(),
            "missing": self.missing,
            "wall_s": round(self.wall_s, 1),
            "compare": str(self.out_dir / "compare.json"),
            "files": [str(f) for f in self.files],
        }


def notes(report: CalibrationReport) -> list[str]:
    s = report.settings
    lines = [
        f"{report.target}: {s['repeat']} round(s) of none + {len(report.points)} spin set(s), "
        f"interleaved; levels {s['levels']}, {s['duration_s']:g}s each after a "
        f"{s['warmup_s']:g}s warm-up; {s['pinning']}; wall time {report.wall_s:.0f}s.",
        f"Measured = overhead over none, paired round by round, median and 95% interval "
        f"(Student t). Pass: {RULE.replace('10%', f'{100 * report.tolerance:g}%')}.",
    ]
    for _, key, text in MEASURES:
        one = report.fits.get(key)
        if one is not None:
            lines.append(
                f"Fit ({text}): measured ≈ {one.intercept_us:+.2f} µs + {one.slope:.3f} × known."
            )
    load = report.environment.get("load_avg_start")
    if load:
        lines.append(f"Load average at the start {load[0]:.2f}, at the end "
                     f"{report.environment.get('load_avg_end', [0.0])[0]:.2f}.")  # fmt: skip
    missed = [row.check for row in report.rows if not row.check.passed and row.check.measured]
    if missed and all((c.error_us or 0) > 0 for c in missed):
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


# --------------------------------------------------------------------------------------------------
# Writing it


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def write_json(report: CalibrationReport, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def calibration_chart(report: CalibrationReport, path: Path) -> Path | None:
    """Measured overhead against known cost, both measures, 95% error bars, the identity line
    and the accepted band (± the tolerance of the known cost)."""
    measured = [p for p in report.points if any(c.measured for c in p.checks.values())]
    if not measured:
        return None
    import matplotlib.pyplot as plt

    from harness.output.charts import chart_style, literal, save_figure, titles

    known = [p.known_us for p in report.points]
    top = max(known)
    with chart_style():
        fig, ax = plt.subplots(figsize=(7.2, 5.6))
        line = [0.0, top * 1.08]
        ax.plot(line, line, color="#333333", linewidth=1, label="identity: measured = known")
        ax.fill_between(
            line,
            [x * (1 - report.tolerance) for x in line],
            [x * (1 + report.tolerance) for x in line],
            color="#999999",
            alpha=0.18,
            linewidth=0,
            # A cost passes exactly when its error bar reaches this band.
            label=f"known ± {100 * report.tolerance:g}%: pass when the error bar reaches it",
        )
        shift = top * 0.012  # side by side, so the two measures' error bars do not overlap
        for (_, key, text), color, marker, dx in zip(
            MEASURES, ("#d62728", "#1f4e9c"), ("o", "s"), (-shift, shift), strict=True
        ):
            xs, ys, lo, hi, failed = [], [], [], [], []
            for point in report.points:
                check = point.checks[key]
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
                xs, ys, yerr=[lo, hi], fmt=marker, color=color, capsize=4, markersize=6,
                elinewidth=1.2, label=text,
            )  # fmt: skip
            if failed:
                fx, fy = zip(*failed, strict=True)
                ax.plot(fx, fy, "x", color="black", markersize=11, mew=2, linestyle="none")
        if any(not row.check.passed for row in report.rows):
            ax.plot([], [], "x", color="black", markersize=9, mew=2, label="outside the range")
        ax.set_xlim(0, top * 1.08)
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        ax.set_xticks(known)
        ax.set_xlabel("known cost of the spin middleware, µs per request")
        ax.set_ylabel("measured overhead over none, µs per request")
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
        fig.tight_layout()
        return save_figure(fig, path)


# --------------------------------------------------------------------------------------------------
# Running it


def _entry_for(compare_report: CompareReport, stack: tuple[str, ...]) -> Entry | None:
    return next((e for e in compare_report.entries if e.contender.stack == stack), None)


def calibrate(
    *,
    target: str,
    costs_ns: Sequence[int] | str = DEFAULT_COSTS,
    repeat: int = DEFAULT_REPEAT,
    levels: Sequence[int] = (64,),
    duration: float = DEFAULT_DURATION,
    warmup: float = DEFAULT_WARMUP,
    timeout: float = 5.0,
    workers: int = 1,
    worker_class: str | None = None,
    threads: int | None = None,
    pin: bool = True,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    wrk: str | None = None,
    tolerance: float = TOLERANCE,
    charts: bool = True,
    echo: Callable[[str], None] = print,
) -> CalibrationReport:
    """Run compare() on `target` with `none` and one `spin:N` set per cost (no raw baseline, no
    ceiling), check each spin's overhead against its cost for both measures, and write
    calibration.json (and calibration.png) next to compare's own files in `out_dir`.

    Raises ValueError (bad settings, before any server starts), and whatever compare raises;
    KeyboardInterrupt after compare has written what it measured."""
    spec = get_target(target)
    if spec.baseline is None:
        raise ValueError(f"{target} takes no middleware: calibrate a framework target")
    costs = parse_costs(costs_ns) if isinstance(costs_ns, str) else tuple(sorted(set(costs_ns)))
    if not costs:
        raise ValueError("no cost given")
    for ns in costs:
        parse_spin(spin_label(ns))  # the range check, with the syntax in the message
    if repeat < 2:
        raise ValueError("--repeat must be at least 2: an interval needs two rounds")
    if not tolerance >= 0:
        raise ValueError(f"the tolerance cannot be negative: {tolerance}")
    from harness.measure.compare import compare

    out = Path(out_dir)
    sets: list[tuple[str, ...]] = [(), *((spin_label(ns),) for ns in costs)]
    load_start = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    echo(f"calibrate: {target} with {', '.join(spin_label(ns) for ns in costs)} against none")
    compared = compare(
        targets=[target],
        sets=sets,
        baseline=False,
        levels=levels,
        duration=duration,
        timeout=timeout,
        warmup=warmup,
        repeat=repeat,
        workers=workers,
        worker_class=worker_class,
        threads=threads,
        pin=pin,
        out_dir=out,
        wrk=wrk,
        ceiling=False,
        charts=False,
        echo=echo,
    )
    points = []
    for ns, stack in zip(costs, sets[1:], strict=True):
        entry = _entry_for(compared, stack)
        checks = {
            key: check_cost(ns / 1000, getattr(entry, attr) if entry else None, tolerance)
            for attr, key, _ in MEASURES
        }
        points.append(CalibrationPoint(ns, checks))
    environment = {**compared.environment, "load_avg_start": load_start}
    environment["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    settings = {
        **compared.settings,
        "target": target,
        "sets": ["none", *(spin_label(ns) for ns in costs)],
        "costs_us": [ns / 1000 for ns in costs],
        "baseline": False,
        "ceiling": False,
    }
    report = CalibrationReport(
        target=target,
        points=points,
        settings=settings,
        environment=environment,
        compare=compared,
        out_dir=out,
        tolerance=tolerance,
        wall_s=time.monotonic() - started,
    )
    files = [out / "calibration.json"]
    if charts:
        chart = calibration_chart(report, out / "calibration.png")
        if chart is not None:
            files.append(chart)
    report.files = [*files, *compared.files[:2]]
    write_json(report, files[0])
    return report
