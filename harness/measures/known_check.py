"""The check of a known cost against a measured one, shared by `harness calibrate` (over the
wire) and `harness micro` (in-process).

A known cost passes when it lies inside the measured 95% interval widened on each side by the
tolerance (10%) of the known cost:

    low - 0.10 * known  <=  known  <=  high + 0.10 * known

so a measurement passes when it is right to within 10% of the answer, or when the answer is
inside its interval. A measure without an interval (a single round) is checked against its
median ± 10% of the known cost; a measure that was not taken fails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.stats.intervals import Estimate

TOLERANCE = 0.10
RULE = "known inside [low - 10% of known, high + 10% of known] of the measured 95% interval"


@dataclass(frozen=True)
class CostCheck:
    """A known cost (µs) against its measured estimate (µs): pass when the known cost lies in
    the measured interval widened by `tolerance` of the known cost on each side."""

    known_us: float  # in `unit`: µs for a spin, instructions for work
    measured: Estimate | None
    tolerance: float = TOLERANCE
    unit: str = "µs"

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
            return f"known {self.known_us:g} {self.unit}, not measured"
        return (
            f"known {self.known_us:g} {self.unit}, measured {self.measured.median:,.2f} "
            f"{self.unit}, outside [{bounds[0]:,.2f}, {bounds[1]:,.2f}]"
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
            "unit": self.unit,
        }


def check_cost(
    known_us: float, measured: Estimate | None, tolerance: float = TOLERANCE, unit: str = "µs"
) -> CostCheck:
    return CostCheck(known_us, measured, tolerance, unit)


@dataclass(frozen=True)
class CheckRow:
    """One line of a calibration table: what was measured (`label`), how, and its check."""

    label: str
    measure: str
    check: CostCheck

    def failure(self) -> str:
        return f"{self.label} ({self.measure}): {self.check.describe()}"


def failure_message(rows: Sequence[CheckRow], what: str = "calibration") -> str | None:
    """The one-line message for a non-zero exit, None when every check passed."""
    failed = [row.failure() for row in rows if not row.check.passed]
    if not failed:
        return None
    # The rule as these checks applied it: their tolerance, not the default's.
    rule = RULE.replace("10%", f"{100 * rows[0].check.tolerance:g}%")
    return f"{what} failed ({len(failed)} of {len(rows)}; {rule}): " + "; ".join(failed)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)
