"""Timing: N per batch calibrated, warm-up, batches interleaved and rotated."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.experiments.micro.driver import Driver, MicroError
from harness.stats.intervals import Estimate, estimate, paired_differences

DEFAULT_REPEAT = 20
DEFAULT_BATCH_S = 0.05  # with --requests auto: one timed batch lasts about this long
MIN_REQUESTS = 10
MAX_REQUESTS = 1_000_000
# What a batch is timed with. Wall time is what a request takes; the thread's CPU time leaves out
# the time the thread was not running (another process had the core, the VM was descheduled), so
# on a shared machine it is the steadier of the two, and it cannot see waits.
ClockName = Literal["perf_counter", "thread_time"]
# Not a clock: each app's batches counted under callgrind, in a child (micro.counted).
INSTRUCTIONS = "instructions"
CLOCKS: dict[str, tuple[Callable[[], int], ClockName]] = {
    "wall": (time.perf_counter_ns, "perf_counter"),
    "cpu": (time.thread_time_ns, "thread_time"),
}


@dataclass
class Series:
    """One app's repeats: µs per request in each timed batch of `requests` requests."""

    label: str
    requests: int
    values_us: list[float] = field(default_factory=list)

    @property
    def estimate(self) -> Estimate:
        return estimate(self.values_us)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "us_per_request": self.estimate.to_dict(),
            "values_us": [round(v, 4) for v in self.values_us],
        }


def calibrate_requests(driver: Driver, batch_s: float) -> int:
    """N such that a batch lasts about `batch_s`: batches grow fourfold until one lasts a fifth
    of it (which also warms the app up)."""
    n = MIN_REQUESTS
    while True:
        ns = driver.run(n)
        if ns >= batch_s * 0.2e9 or n >= MAX_REQUESTS:
            break
        n *= 4
    return max(MIN_REQUESTS, min(MAX_REQUESTS, round(n * batch_s * 1e9 / max(ns, 1))))


def time_drivers(
    drivers: Mapping[str, Driver],
    *,
    repeat: int = DEFAULT_REPEAT,
    requests: int | None = None,
    batch_s: float = DEFAULT_BATCH_S,
) -> dict[str, Series]:
    """Time every driver `repeat` times, interleaved, each repeat in a rotated order (A B C,
    B C A, ...); `requests=None` picks N per driver so a batch lasts about `batch_s`."""
    if repeat < 1:
        raise MicroError("repeat must be at least 1")
    if requests is not None and requests < 1:
        raise MicroError("requests must be at least 1")
    labels = list(drivers)
    series: dict[str, Series] = {}
    for label in labels:
        driver = drivers[label]
        n = requests if requests is not None else calibrate_requests(driver, batch_s)
        driver.run(max(1, n // 5))  # warm-up (again, after calibration: the same N as timed)
        series[label] = Series(label, n)
    for r in range(repeat):
        gc.collect()
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            one = series[label]
            one.values_us.append(drivers[label].run(one.requests) / one.requests / 1000)
    return series


def overhead(values: Sequence[float], reference: Sequence[float]) -> Estimate | None:
    """Paired by repeat: values[i] - reference[i]."""
    diffs = paired_differences(values, reference)
    return estimate(diffs) if diffs else None
