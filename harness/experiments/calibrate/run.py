"""`harness calibrate`: measure middlewares whose cost is known, and say whether the harness
finds it.

The `spin:N` middleware burns exactly N of its thread's CPU time per request (middleware.spin
.spinner); `work:N` runs N turns of a loop whose instructions are counted in-process
(harness.measures.known). calibrate runs compare() on one target with the sets `none, spin:N1,
spin:N2, ...` (or `work:N...` for the instructions measure), without the raw baseline, and checks
each one's measured overhead over `none`, in every measure of the run (by default both server
CPU time per request and 1e6/QPS per server core), against its known cost, with the rule of
harness.measures.known_check.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.experiments.calibrate.plan import (
    CALIBRATE_LOAD,
    CALIBRATE_MEASURES,
    DEFAULT_OUT_DIR,
    DEFAULT_REPEAT,
    CalibrationPlan,
    CalibrationRequest,
    plan_calibration,
)
from harness.experiments.compare.contenders import Entry
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.run import compare
from harness.load.files import versioned
from harness.measures.known import KNOWN_COSTS, instructions_per_turn
from harness.measures.known_check import (
    RULE,
    TOLERANCE,
    CheckRow,
    CostCheck,
    check_cost,
    failure_message,
)
from harness.measures.registry import get_measure

__all__ = [
    "CALIBRATE_LOAD",
    "CALIBRATE_MEASURES",
    "DEFAULT_OUT_DIR",
    "DEFAULT_REPEAT",
    "CalibrationPoint",
    "CalibrationReport",
    "CalibrationRequest",
    "Fit",
    "calibrate",
    "fit",
    "parse_costs",
    "plan_calibration",
]


def parse_costs(text: str) -> tuple[int, ...]:
    """`5,20,50` (µs), or with units (`5us,1.5ms`) -> nanoseconds of spin, ascending, no
    repeats. BadSpin (a ValueError) names the syntax."""
    return KNOWN_COSTS["spin"].parse(text)


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
    """One set of known cost and its checks, one per measure (by the measure's name)."""

    label: str  # the set: spin:20us, work:2000
    amount: int  # its nanoseconds, or turns
    known: float  # its cost in the measures' unit: µs, or instructions
    checks: dict[str, CostCheck]

    @property
    def known_us(self) -> float:  # the spins' known cost, as it has always been named
        return self.known

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.label,
            "known": self.known,
            "known_us": self.known,
            **{name: check.to_dict() for name, check in self.checks.items()},
        }


@dataclass
class CalibrationReport:
    target: str
    points: list[CalibrationPoint]
    settings: dict[str, Any]
    environment: dict[str, Any]
    compare: CompareReport
    out_dir: Path
    measures: tuple[str, ...] = CALIBRATE_MEASURES
    kind: str = "spin"  # the known cost: spin:N (µs) or work:N (instructions)
    tolerance: float = TOLERANCE
    wall_s: float = 0.0
    files: list[Path] = field(default_factory=list)

    @property
    def rows(self) -> list[CheckRow]:
        return [
            CheckRow(point.label, get_measure(name).title, point.checks[name])
            for point in self.points
            for name in self.measures
        ]

    @property
    def fits(self) -> dict[str, Fit | None]:
        return {
            name: fit(
                [
                    (p.known_us, p.checks[name].measured.median)  # type: ignore[union-attr]
                    for p in self.points
                    if p.checks[name].measured is not None
                ]
            )
            for name in self.measures
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
        return versioned(
            SCHEMA,
            VERSION,
            {
                "kind": "calibration",
                "target": self.target,
                "known_cost": self.kind,
                "unit": f"{get_measure(self.measures[0]).unit}_per_request",
                "rule": RULE.replace("10%", f"{100 * self.tolerance:g}%"),
                "tolerance": self.tolerance,
                "measures": {name: get_measure(name).title for name in self.measures},
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
            },
        )


# --------------------------------------------------------------------------------------------------
# Running it


SCHEMA = "calibration"
VERSION = 2  # 1: unversioned, with the two measures hard-wired


def _entry_for(compare_report: CompareReport, stack: tuple[str, ...]) -> Entry | None:
    return next((e for e in compare_report.entries if e.contender.stack == stack), None)


def calibrate(
    request: CalibrationRequest | None = None,
    /,
    *,
    echo: Callable[[str], None] = print,
    **fields: Any,
) -> CalibrationReport:
    """Run compare() on `target` with `none` and one set of known cost per amount of `costs`
    (nanoseconds of spin for the timed measures, turns of work for instructions; no raw
    baseline, no ceiling), and check each one's overhead against its cost in every measure
    (calibrate.render writes the result). `tolerance`: 10% for a spin, 2% for work. Without a
    request, its fields are given as keywords: `calibrate(target="flask", repeat=3)`.

    Raises UsageError (bad settings, before any server starts), and whatever compare raises;
    after a Ctrl-C the report has `interrupted` set and checks only the rounds that finished."""
    if request is None:
        request = CalibrationRequest(**fields)
    elif fields:
        raise TypeError(f"calibrate() takes a request or its fields, not both: {sorted(fields)}")
    plan = plan_calibration(request)
    load_start = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    echo(f"calibrate: {plan.target.name} with {', '.join(plan.labels)} against none")
    # work's known costs are counted in-process, before any round
    known = {n: plan.kind.known(n) for n in plan.amounts}
    compared = _compare(plan, echo)
    points = _points(plan, known, compared)
    environment = {**compared.environment, "load_avg_start": load_start}
    environment["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return CalibrationReport(
        target=plan.target.name,
        points=points,
        settings=_settings(plan, known, compared),
        environment=environment,
        compare=compared,
        out_dir=plan.out_dir,
        measures=tuple(request.measures),
        kind=plan.kind.kind,
        tolerance=plan.tolerance,
        wall_s=time.monotonic() - started,
    )


def _compare(plan: CalibrationPlan, echo: Callable[[str], None]) -> CompareReport:
    """The plan's sets compared on its target: no raw baseline, no ceiling."""
    request = plan.request
    return compare(
        targets=[plan.target],
        sets=plan.sets,
        serve=request.serve,
        load=request.load,
        baseline=False,
        repeat=request.repeat,
        # The headline (precision's measure) is CPU time when it is measured.
        measures=sorted(request.measures, key=lambda m: m != "cpu"),
        tune=request.tune,
        precision=request.precision,
        out_dir=plan.out_dir,
        ceiling=False,
        echo=echo,
    )


def _points(
    plan: CalibrationPlan, known: dict[int, float], compared: CompareReport
) -> list[CalibrationPoint]:
    """Each known cost checked against its set's measured overhead over `none`, in every
    measure (a set with no rounds measured nothing, and fails)."""
    measures, points = plan.request.measures, []
    for n, stack in zip(plan.amounts, plan.sets[1:], strict=True):
        entry = _entry_for(compared, stack)
        measured = {name: entry.overhead(name) if entry else None for name in measures}
        checks = {
            name: check_cost(known[n], measured[name], plan.tolerance, get_measure(name).unit)
            for name in measures
        }
        points.append(CalibrationPoint(plan.kind.label(n), n, known[n], checks))
    return points


def _settings(
    plan: CalibrationPlan, known: dict[int, float], compared: CompareReport
) -> dict[str, Any]:
    """How it was measured: its compare's settings, and the known costs."""
    settings = {
        **compared.settings.to_dict(),
        "target": plan.target.name,
        "sets": ["none", *plan.labels],
        "known": {plan.kind.label(n): known[n] for n in plan.amounts},
        "costs_us": [known[n] for n in plan.amounts] if plan.kind.kind == "spin" else None,
        "baseline": False,
        "ceiling": False,
    }
    if plan.kind.kind == "work":
        settings["instructions_per_turn"] = instructions_per_turn()
    return settings
