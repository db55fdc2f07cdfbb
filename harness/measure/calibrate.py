"""`harness calibrate`: measure middlewares whose cost is known, and say whether the harness
finds it.

The `spin:N` middleware burns exactly N of its thread's CPU time per request (middleware.core
.spinner). calibrate runs compare() on one target with the sets `none, spin:N1, spin:N2, ...`,
without the raw baseline, and checks each spin's measured overhead over `none`, for both of
compare's cost measures (1e6/QPS per server core, and server CPU time per request), against its
known cost, with the rule of harness.measure.check.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.request import Request
from harness.measure.check import RULE, TOLERANCE, CheckRow, CostCheck, check_cost, failure_message
from harness.measure.compare import compare
from harness.measure.contenders import CompareReport, Entry
from harness.measure.rounds import Precision
from middleware.stack import SPIN_SYNTAX, BadSpin, parse_spin, spin_label
from targets.table import Target, get_target

DEFAULT_OUT_DIR = Path("_output/calibrate")
DEFAULT_COSTS = "5,20,50"
DEFAULT_REPEAT = 3
DEFAULT_DURATION = 3.0
DEFAULT_WARMUP = 1.0

# compare's two cost measures: Entry attribute, key in calibration.json, how the table says it.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("overhead_qps", "qps", "1e6/QPS per server core"),
    ("overhead_cpu", "cpu", "server CPU time per request"),
)


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
    def interrupted(self) -> bool:
        return self.compare.interrupted

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


# --------------------------------------------------------------------------------------------------
# Running it


def _entry_for(compare_report: CompareReport, stack: tuple[str, ...]) -> Entry | None:
    return next((e for e in compare_report.entries if e.contender.stack == stack), None)


def calibrate(
    *,
    target: str | Target,
    request: Request | None = None,
    costs_ns: Sequence[int] | str = DEFAULT_COSTS,
    repeat: int = DEFAULT_REPEAT,
    levels: Sequence[int] = (64,),
    duration: float = DEFAULT_DURATION,
    warmup: float = DEFAULT_WARMUP,
    timeout: float = 5.0,
    workers: int = 1,
    worker_class: str | None = None,
    threads: int | None = None,
    server: str | None = None,
    pin: bool = True,
    tune: bool = True,
    precision: Precision | None = None,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    wrk: str | None = None,
    tolerance: float = TOLERANCE,
    echo: Callable[[str], None] = print,
) -> CalibrationReport:
    """Run compare() on `target` with `none` and one `spin:N` set per cost (no raw baseline, no
    ceiling) and check each spin's overhead against its cost for both measures
    (harness.output.calibration writes the result).

    Raises ValueError (bad settings, before any server starts), and whatever compare raises;
    after a Ctrl-C the report has `interrupted` set and checks only the rounds that finished."""
    spec = get_target(target) if isinstance(target, str) else target
    if spec.baseline is None:
        raise ValueError(f"{spec.name} takes no middleware: calibrate a framework target")
    costs = parse_costs(costs_ns) if isinstance(costs_ns, str) else tuple(sorted(set(costs_ns)))
    if not costs:
        raise ValueError("no cost given")
    for ns in costs:
        parse_spin(spin_label(ns))  # the range check, with the syntax in the message
    if repeat < 2:
        raise ValueError("--repeat must be at least 2: an interval needs two rounds")
    if not tolerance >= 0:
        raise ValueError(f"the tolerance cannot be negative: {tolerance}")
    out = Path(out_dir)
    sets: list[tuple[str, ...]] = [(), *((spin_label(ns),) for ns in costs)]
    load_start = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    echo(f"calibrate: {spec.name} with {', '.join(spin_label(ns) for ns in costs)} against none")
    compared = compare(
        targets=[spec],
        request=request,
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
        servers=[server] if server else None,
        pin=pin,
        tune=tune,
        precision=precision,
        out_dir=out,
        wrk=wrk,
        ceiling=False,
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
        "target": spec.name,
        "sets": ["none", *(spin_label(ns) for ns in costs)],
        "costs_us": [ns / 1000 for ns in costs],
        "baseline": False,
        "ceiling": False,
    }
    report = CalibrationReport(
        target=spec.name,
        points=points,
        settings=settings,
        environment=environment,
        compare=compared,
        out_dir=out,
        tolerance=tolerance,
        wall_s=time.monotonic() - started,
    )
    return report
