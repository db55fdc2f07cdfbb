"""The middlewares of known cost, to calibrate the harness against: `spin:N` burns N of the
thread's CPU time per request, `work:N` runs N iterations of a loop of fixed instructions."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable

_thread_time_ns = time.thread_time_ns


def _busy_wait(wait: int) -> Callable[[], None]:
    clock = _thread_time_ns

    def spin() -> None:
        end = clock() + wait
        while clock() < end:
            pass

    return spin


@functools.cache
def spin_overshoot_ns() -> int:
    """What a busy-wait costs beyond the time it waits for: the read of the clock before the
    loop, the last read, which crosses the end by half a loop on average, and the call itself.
    Each read of the thread's CPU clock is a system call (~0.2 µs here, more under some
    hypervisors), so uncorrected, a 5 µs spin would cost ~10% more. Measured once per process
    with the same clock: the median of 15 spins of 20 µs, minus one read of the clock (the two
    reads around each spin count half each)."""
    clock = _thread_time_ns
    wait = 20_000
    probe = _busy_wait(wait)
    costs = []
    for _ in range(15):
        before = clock()
        probe()
        costs.append(clock() - before)
    reads = [clock() for _ in range(201)]
    read = sorted(b - a for a, b in itertools.pairwise(reads))[100]
    return max(0, sorted(costs)[7] - wait - read)


def spinner(ns: int) -> Callable[[], None]:
    """A function that burns `ns` nanoseconds of the calling thread's CPU time per call.

    It busy-waits on the thread's CPU clock (CLOCK_THREAD_CPUTIME_ID), not a wall clock: time
    the thread is preempted or waits does not count, so the cost per request is the same under
    any load, concurrency or worker class. The loop's fixed overshoot is taken off every wait
    (`spin_overshoot_ns`), so that a whole call costs `ns`, not `ns` plus a few clock reads."""
    if ns <= 0:
        raise ValueError(f"a spin must cost more than 0 ns: {ns}")
    return _busy_wait(ns - spin_overshoot_ns())


def worker(iterations: int) -> Callable[[], None]:
    """A function that runs `iterations` turns of a loop whose instructions depend on nothing but
    the count: it allocates nothing (`repeat` yields one object, `not` returns a singleton), so no
    allocator state, cache or clock enters it. With a fixed hash seed a turn costs the same
    instructions in every run (harness calibrate counts them in-process under callgrind)."""
    if iterations <= 0:
        raise ValueError(f"work must run at least one iteration: {iterations}")
    turns = itertools.repeat

    def work() -> None:
        flag = False
        for _ in turns(None, iterations):
            flag = not flag

    return work


def burner(kind: str, amount: int) -> Callable[[], None]:
    """What a known-cost layer does per request: ("spin", ns) or ("work", iterations)."""
    return spinner(amount) if kind == "spin" else worker(amount)
