"""`memory`: what the serving processes hold while they answer, over the wire.

Through each measured level a sampler reads the serving processes' RSS every 50 ms (and their
USS, what is theirs alone, every fifth sample: it reads smaps, which costs more). A round reads
three figures:

- `memory:retained`: bytes kept per 1,000 requests, the slope of RSS against the requests
  answered (a least-squares line through the samples after the first fifth of the level, with
  the level's QPS turning time into requests); a set that keeps what it should not grows by the
  same amount round after round;
- `memory:rss`: the peak RSS of the level, MiB;
- `memory:uss`: the USS at the end of the level, MiB.

A set whose retained bytes are above the leak floor in every round is flagged as leaking. The
floor, 50 B a request, is above what a healthy server's RSS does on its own: pymalloc takes
memory in 1 MiB arenas, and one new arena in a 3-second level at 15,000 req/s reads as 23 B a
request. A server whose RSS passes its ceiling is killed at once and the round fails, saying so.
"""

from __future__ import annotations

import functools
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from harness.measures.measure import Figure, Measure, Probe, WireRound
from harness.serving.servers import RunningServer
from harness.serving.settings import ServeSettings

SAMPLE_S = 0.05
USS_EVERY = 5
SETTLE_SHARE = 0.2  # of a level's samples, left out of the slope: the allocator settling in
LEAK_FLOOR = 50_000.0  # bytes per 1,000 requests
MIB = 1024 * 1024
FIGURES = ("retained", "rss", "uss")
BLIND_TO = (
    "memory the allocator keeps for reuse (freed objects stay in RSS), native allocations "
    "shared between processes, and a leak too slow to show in the time given"
)


def default_ceiling() -> int:
    """A server may hold a quarter of the machine's memory, at most 4 GiB."""
    return int(min(psutil.virtual_memory().total / 4, 4 * 1024 * MIB))


class Sampler:
    """RSS and USS of a server's serving processes in a thread, until stopped; with a
    `ceiling`, the server is killed when its RSS passes it."""

    def __init__(self, server: RunningServer, ceiling: int | None = None) -> None:
        self.server, self.ceiling = server, ceiling
        self.samples: list[tuple[float, int, int | None]] = []  # (s, rss, uss)
        self.over: int | None = None  # the RSS at which it was killed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _processes(self) -> list[psutil.Process]:
        pids = self.server.worker_pids()
        return [p for p in self.server.processes() if p.pid in pids]

    def _run(self) -> None:
        count = 0
        while not self._stop.wait(SAMPLE_S if count else 0):
            rss, uss = 0, 0 if count % USS_EVERY == 0 else None
            try:
                for proc in self._processes():
                    rss += proc.memory_info().rss
                    if uss is not None:
                        uss += proc.memory_full_info().uss
            except psutil.Error:
                continue  # a process came or went between two reads
            self.samples.append((time.monotonic() - self._started, rss, uss))
            count += 1
            if self.ceiling is not None and rss > self.ceiling:
                self.over = rss
                os.killpg(self.server.pid, signal.SIGKILL)
                return


def slope(samples: list[tuple[float, int, int | None]]) -> float | None:
    """Bytes a second, the least-squares slope of RSS over the samples after the settling."""
    kept = samples[int(len(samples) * SETTLE_SHARE) :]
    if len(kept) < 3:
        return None
    ts, ys = [s[0] for s in kept], [float(s[1]) for s in kept]
    try:
        return statistics.linear_regression(ts, ys).slope
    except statistics.StatisticsError:
        return None


@functools.cache
def figure(what: str) -> Figure:
    """One of the memory measure's figures, a measure of its own."""
    units = {"retained": "B/1k req", "rss": "MiB", "uss": "MiB"}
    titles = {
        "retained": "bytes retained per 1,000 requests (the slope of RSS)",
        "rss": "peak RSS of the serving processes",
        "uss": "USS of the serving processes at the end of the level",
    }
    return Figure(
        name=f"memory:{what}",
        unit=units[what],
        title=titles[what],
        short=what,
        blind_to=BLIND_TO,
        digits=0 if what == "retained" else 1,
        in_table=what != "uss",
        per_request=False,
    )


class ServerMemory(Measure):
    name: str = "memory"
    unit: str = "B/1k req"
    title: str = "memory the serving processes hold: retained per 1,000 requests, RSS"
    short: str = "memory"
    blind_to: str = BLIND_TO
    known_cost: str | None = None
    per_request: bool = False

    def figure(self, name: str) -> Measure:
        if name not in FIGURES:
            raise KeyError(name)
        return figure(name)

    def figures(self, load: Any) -> tuple[str, ...]:
        return tuple(f"memory:{what}" for what in FIGURES)

    def prepare(self, serve: ServeSettings, out_dir: Path) -> ServeSettings:
        """The kernel's limit under the watch's: a server's private memory may not pass twice
        its ceiling (RLIMIT_DATA), however fast it grows between two samples."""
        ceiling = serve.memory_ceiling or default_ceiling()
        hard = max(2 * ceiling, ceiling + 512 * MIB)
        return serve.replace(wrapper=("prlimit", f"--data={hard}", "--", *serve.wrapper))

    def watch(self, server: RunningServer) -> Callable[[], str | None]:
        """RSS from start to stop: past its ceiling, the server is killed at once."""
        ceiling = server.config.settings.memory_ceiling or default_ceiling()
        sampler = Sampler(server, ceiling).start()

        def stop() -> str | None:
            sampler.stop()
            if sampler.over is None:
                return None
            return (
                f"stopped at its memory ceiling: RSS {sampler.over / MIB:,.0f} MiB > "
                f"{ceiling / MIB:,.0f} MiB (--memory-ceiling)"
            )

        return stop

    def probe(self, server: RunningServer) -> Probe:
        def start(concurrency: int) -> Callable[[], dict[str, Any]]:
            sampler = Sampler(server).start()

            def finish() -> dict[str, Any]:
                sampler.stop()
                return {"memory_samples": [list(s) for s in sampler.samples]}

            return finish

        return start

    def read_figures(self, wire: WireRound) -> dict[str, float]:
        samples = wire.peak.extra.get("memory_samples") or []
        if not samples or not wire.peak.qps:
            return {}
        found = {"memory:rss": max(s[1] for s in samples) / MIB}
        uss = [s[2] for s in samples if s[2] is not None]
        if uss:
            found["memory:uss"] = uss[-1] / MIB
        per_second = slope([(s[0], s[1], s[2]) for s in samples])
        if per_second is not None:
            found["memory:retained"] = 1000 * per_second / wire.peak.qps
        return found

    def flags(self, values: list[dict[str, float]]) -> list[str]:
        retained = [v["memory:retained"] for v in values if "memory:retained" in v]
        if retained and min(retained) > LEAK_FLOOR:
            return [f"leaking: +{statistics.median(retained):,.0f} B per 1,000 requests"]
        return []


def leaks(entries: list[Any], limit: float) -> list[str]:
    """The sets that keep more than `limit` bytes per 1,000 requests in every round (the gate
    of --max-leak): each `label: N B per 1,000 requests`."""
    found = []
    for entry in entries:
        retained = entry.values("memory:retained")
        if retained and min(retained) > limit:
            found.append(f"{entry.label}: {statistics.median(retained):,.0f} B per 1,000 requests")
    return found
