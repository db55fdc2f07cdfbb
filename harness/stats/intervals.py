"""Small-sample statistics for repeated benchmark runs: median, Student-t interval, significance.

Repeats are few (3 to 10), so the interval comes from Student's t on paired differences: round i
of a set is paired with round i of the reference, which cancels the slow drift of a machine that
interleaving (A B A B ...) is meant to expose. The point estimate is the median, which one bad
round cannot drag.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# Two-sided 95% critical values of Student's t, by degrees of freedom (df 1..30).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_critical_95(df: int) -> float:
    if df < 1:
        raise ValueError("an interval needs at least two values")
    if df <= len(_T975):
        return _T975[df - 1]
    return statistics.NormalDist().inv_cdf(0.975) * (1 + 1 / (4 * df))  # close above df 30


@dataclass(frozen=True)
class Estimate:
    """A median with a 95% interval; `low`/`high` are None when there is a single value."""

    median: float
    low: float | None
    high: float | None
    n: int

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero; a single value is never significant."""
        return self.has_interval and (self.low > 0 or self.high < 0)  # type: ignore[operator]

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2

    def to_dict(self) -> dict[str, float | int | bool | None]:
        return {**asdict(self), "significant": self.significant, "half_width": self.half_width}

    def format(self, digits: int = 1) -> str:
        if self.half_width is None:
            return f"{self.median:,.{digits}f}"
        return f"{self.median:,.{digits}f} ± {self.half_width:,.{digits}f}"

    def format_change(self, digits: int = 1, not_significant: str = " (not significant)") -> str:
        """A difference: signed, with its interval, and said when the interval includes zero."""
        text = f"{self.median:+,.{digits}f}"
        if self.half_width is None:  # one round: a bare number would read as exact
            return text + " (no interval)"
        return (
            text
            + f" ± {self.half_width:,.{digits}f}"
            + ("" if self.significant else not_significant)
        )


def estimate(values: Sequence[float]) -> Estimate:
    """Median of `values` and the 95% Student-t interval of their mean."""
    clean = [v for v in values if math.isfinite(v)]
    if not clean:
        raise ValueError("no finite values to estimate from")
    middle = statistics.median(clean)
    if len(clean) < 2:
        return Estimate(middle, None, None, len(clean))
    mean = statistics.fmean(clean)
    half = t_critical_95(len(clean) - 1) * statistics.stdev(clean) / math.sqrt(len(clean))
    return Estimate(middle, mean - half, mean + half, len(clean))


def paired_differences(values: Sequence[float], reference: Sequence[float]) -> list[float]:
    """values[i] - reference[i] for the rounds both have (a missing round is skipped, not faked)."""
    return [
        v - r
        for v, r in zip(values, reference, strict=False)
        if math.isfinite(v) and math.isfinite(r)
    ]


def welch(after: Sequence[float], before: Sequence[float]) -> Estimate | None:
    """`after` minus `before`, two independent samples (two runs, whose rounds cannot be
    paired): the difference of the medians, and the Welch 95% interval of the difference of the
    means (Student's t with the Welch-Satterthwaite degrees of freedom, rounded down). None
    without values on both sides; no interval with fewer than two on either."""
    a = [v for v in after if math.isfinite(v)]
    b = [v for v in before if math.isfinite(v)]
    if not a or not b:
        return None
    middle = statistics.median(a) - statistics.median(b)
    if len(a) < 2 or len(b) < 2:
        return Estimate(middle, None, None, min(len(a), len(b)))
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    mean = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:  # both runs gave one value each round: no spread to widen it by
        return Estimate(middle, mean, mean, min(len(a), len(b)))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_critical_95(max(1, math.floor(df))) * math.sqrt(va + vb)
    return Estimate(middle, mean - half, mean + half, min(len(a), len(b)))


def estimate_dict(e: Estimate | None) -> dict[str, float | int | bool | None] | None:
    """An estimate as compare.json keeps it; None when there is none."""
    return e.to_dict() if e else None
