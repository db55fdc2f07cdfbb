"""Every request's latency of a run, kept as counts in log-spaced buckets.

A percentile of a few rounds is best read from all their requests together, and its interval
needs the requests themselves (harness.stats.pooled resamples them); a round's own p99 says
too little. k6 writes each request's timing as it happens (harness.load.k6); tens of thousands
of floats a round are too many for compare.json, so they are kept here as counts: each bucket
1% wider than the one below, so a latency is known to ±0.5%, and a run of 0.2-50 ms fills
about 550 buckets. The largest latency is kept exactly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GROWTH = 1.01  # each bucket's upper edge over its lower
FLOOR_MS = 0.001  # the lower edge of bucket 0: 1 µs (k6 times to the µs)


def bucket_of(ms: float) -> int:
    return max(0, math.floor(math.log(max(ms, FLOOR_MS) / FLOOR_MS) / math.log(GROWTH)))


def middle_of(bucket: int) -> float:
    """The bucket's geometric middle, in ms: what a latency counted there is read as."""
    return FLOOR_MS * GROWTH ** (bucket + 0.5)


@dataclass(frozen=True)
class Histogram:
    """Counts of latencies (ms) by bucket: `counts[i]` in bucket `offset + i`."""

    offset: int
    counts: tuple[int, ...]
    max_ms: float

    @classmethod
    def of(cls, samples: Iterable[float]) -> Histogram | None:
        """The histogram of `samples` (ms); None when there are none."""
        found: Counter[int] = Counter()
        largest = -math.inf
        for ms in samples:
            if math.isfinite(ms):
                found[bucket_of(ms)] += 1
                largest = max(largest, ms)
        if not found:
            return None
        low, high = min(found), max(found)
        return cls(low, tuple(found[i] for i in range(low, high + 1)), largest)

    @property
    def n(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float:
        """The `q` quantile (0 < q <= 1) of the counted latencies, in ms: the bucket holding the
        ceil(q·n)-th smallest, read at its middle; q = 1 is the exact largest."""
        if q >= 1:
            return self.max_ms
        rank = max(1, math.ceil(q * self.n))
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return min(middle_of(self.offset + i), self.max_ms)
        return self.max_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "growth": GROWTH,
            "floor_ms": FLOOR_MS,
            "offset": self.offset,
            "counts": list(self.counts),
            "max_ms": self.max_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        if (data.get("growth"), data.get("floor_ms")) != (GROWTH, FLOOR_MS):
            raise ValueError("a latency histogram of other buckets than this version's")
        return cls(int(data["offset"]), tuple(int(c) for c in data["counts"]), data["max_ms"])
