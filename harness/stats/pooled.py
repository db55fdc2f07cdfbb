"""Percentiles of every request of all rounds, with an interval fit for a percentile.

A round's p99 is one number; two rounds' p99s averaged with Student's t gave `1.85 ± 0.00 ms`
from two rounds that happened to agree, and `2.97 ± 4.49 ms` (an interval from −1.52 ms) from two
that did not. A percentile is not a mean: its interval comes from the requests under it.

So a figure named `MEASURE:pQ@AT` (`latency:p99@1000`) whose rounds kept their samples
(`MEASURE@AT`, harness.stats.histogram) is estimated from all of them pooled: the point is the
pooled percentile, and the 95% interval is a two-level bootstrap, the way the samples arose:
rounds drawn with replacement (a round's requests share its server, its stalls, its VM
minute), then each drawn round's requests drawn with replacement from its own histogram. Every
resample is a set of real latencies, so an interval is never below zero. A difference between
two sets draws the same rounds on both sides (the rounds are paired) and is what may be called
significant; a latency itself is only given with its interval. One round gives none: its
requests are not the rounds a stall or a VM's slow minute falls on.

The resampling is seeded: the same stored rounds give the same interval on every read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from harness.stats.histogram import FLOOR_MS, GROWTH, Histogram
from harness.stats.intervals import Estimate

if TYPE_CHECKING:
    import numpy as np


class Round(Protocol):
    """A round that kept samples (harness.experiments.compare.contenders.Round)."""

    samples: dict[str, Histogram]


RESAMPLES = 1000
SEED = 20261206
_QUANTILE = re.compile(r"(?P<measure>[\w-]+):(?P<what>p\d+(?:\.\d+)?|max)@(?P<at>.+)")


def quantile_of(figure: str) -> tuple[str, float] | None:
    """(the samples' name, q) of a percentile figure: `latency:p99.9@1000` -> (`latency@1000`,
    0.999); the max is q = 1. None for a figure that is not a percentile."""
    found = _QUANTILE.fullmatch(figure)
    if found is None:
        return None
    what = found.group("what")
    q = 1.0 if what == "max" else float(what[1:]) / 100
    return f"{found.group('measure')}@{found.group('at')}", q


def pooled_cost(rounds: Sequence[Round], figure: str) -> Estimate | None:
    """The percentile of every request of `rounds` with its bootstrap interval; None where the
    figure is not a percentile or no round kept samples of it."""
    asked = quantile_of(figure)
    if asked is None or not rounds:
        return None
    name, q = asked
    # A round without them did not sustain the rate: it has no latency there to pool.
    histograms = tuple(h for r in rounds if (h := r.samples.get(name)) is not None)
    return _cost(histograms, q) if histograms else None


def pooled_difference(pairs: Sequence[tuple[Round, Round]], figure: str) -> Estimate | None:
    """The first side's pooled percentile minus the second's, the rounds drawn in pairs."""
    asked = quantile_of(figure)
    if asked is None or not pairs:
        return None
    name, q = asked
    both = [
        (x, y)
        for one, other in pairs
        if (x := one.samples.get(name)) is not None and (y := other.samples.get(name)) is not None
    ]
    if not both:
        return None
    return _difference(tuple(x for x, _ in both), tuple(y for _, y in both), q)


def pooled(histograms: Sequence[Histogram]) -> Histogram:
    """One histogram of all the requests of `histograms`."""
    low = min(h.offset for h in histograms)
    high = max(h.offset + len(h.counts) for h in histograms)
    counts = [0] * (high - low)
    for h in histograms:
        for i, count in enumerate(h.counts):
            counts[h.offset - low + i] += count
    return Histogram(low, tuple(counts), max(h.max_ms for h in histograms))


@functools.lru_cache(maxsize=512)
def _cost(histograms: tuple[Histogram, ...], q: float) -> Estimate:
    point = pooled(histograms).quantile(q)
    # The largest of all: resampling can only find it or something smaller. One round: its
    # requests alone cannot show how far another round would fall, so no interval, as for a
    # mean of one round.
    if q >= 1 or len(histograms) < 2:
        return Estimate(point, None, None, len(histograms))
    low, high = _interval(_resampled(histograms, q))
    return Estimate(point, min(low, point), max(high, point), len(histograms))


@functools.lru_cache(maxsize=512)
def _difference(a: tuple[Histogram, ...], b: tuple[Histogram, ...], q: float) -> Estimate:
    point = pooled(a).quantile(q) - pooled(b).quantile(q)
    if q >= 1 or len(a) < 2:
        return Estimate(point, None, None, len(a))
    picks = _picks(len(a))
    low, high = _interval(_resampled(a, q, picks) - _resampled(b, q, picks))
    return Estimate(point, min(low, point), max(high, point), len(a))


def _picks(rounds: int) -> np.ndarray:
    """Which rounds each resample draws: RESAMPLES rows of `rounds` indices."""
    import numpy as np

    return np.random.default_rng(SEED).integers(0, rounds, size=(RESAMPLES, rounds))


def _resampled(
    histograms: tuple[Histogram, ...], q: float, picks: np.ndarray | None = None
) -> np.ndarray:
    """The `q` percentile of each of RESAMPLES two-level resamples, in ms."""
    import numpy as np

    whole = pooled(histograms)
    rng = np.random.default_rng(SEED + 1)
    # Each round's requests redrawn from its own histogram, RESAMPLES times: (rounds, R, buckets)
    draws = np.stack(
        [rng.multinomial(h.n, _aligned(h, whole) / h.n, size=RESAMPLES) for h in histograms]
    )
    if picks is None:
        picks = _picks(len(histograms))
    totals = draws[picks, np.arange(RESAMPLES)[:, None], :].sum(axis=1)  # (R, buckets)
    cumulative = totals.cumsum(axis=1)
    ranks = np.maximum(1, np.ceil(q * cumulative[:, -1]))
    found = (cumulative >= ranks[:, None]).argmax(axis=1)
    middles = FLOOR_MS * GROWTH ** (whole.offset + found + 0.5)  # histogram.middle_of
    return np.minimum(middles, whole.max_ms)


def _aligned(h: Histogram, whole: Histogram) -> np.ndarray:
    import numpy as np

    counts = np.zeros(len(whole.counts))
    start = h.offset - whole.offset
    counts[start : start + len(h.counts)] = h.counts
    return counts


def _interval(values: np.ndarray) -> tuple[float, float]:
    import numpy as np

    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
