"""A measure: one way of reading what a set costs per request (SPEC section 8).

Rounds, entries, overheads, the precision rule, the gate, the report's columns, the findings and
calibrate are written over measures; a measure only says what it reads and how it is shown:

- its name (`--measure`, compare.json), unit and title, and what it cannot see;
- how a round of the wrk procedure yields it (`read`), from the round's saturating level, with
  what it may attach: a `probe` around the measured level, `prepare`, which may change how the
  server runs (run it under a tool) before it starts, and `prepare_load`, what load it sends.

Adding a measure is a module in this package and one line in harness.measures.registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.results import SweepResult
from harness.load.settings import LoadSettings
from harness.load.wrk_output import WrkResult
from harness.serving.servers import RunningServer
from harness.serving.settings import ServeSettings
from harness.stats.histogram import Histogram

Probe = Callable[[int], Callable[[], dict[str, Any]]]
# What compare.json records of each measure, in this order.
DESCRIBED = ("name", "unit", "title", "short", "blind_to", "estimated_in_us")


@dataclass(frozen=True)
class Reading:
    """What one round of a measure's own procedure read: its figures by name, and the samples
    that a figure's percentiles are pooled from across rounds (harness.stats.pooled), by
    name (`latency@1000`: every request's latency at 1,000 req/s)."""

    values: dict[str, float]
    samples: dict[str, Histogram] = field(default_factory=dict)


@dataclass(frozen=True)
class WireRound:
    """What one round of the wrk procedure gave a measure to read: the sweep, its saturating
    (peak QPS) level with what the probes added to it (`peak.extra`), and how the server ran."""

    sweep: SweepResult
    peak: WrkResult
    serve: ServeSettings


class Measure:
    """A measure of the wrk procedure. Subclasses set the class attributes and `read`."""

    name: str  # what --measure and compare.json call it
    unit: str = "µs"  # per request
    title: str  # what it reads, in words: "server CPU time per request"
    short: str  # the column's tag: "CPU" in "µs/req (CPU)"
    blind_to: str  # what it cannot see, said in the notes and the docs
    digits: int = 1
    # What harness calibrate adds as a cost this measure knows in advance: "spin" (spin:N, a
    # known CPU time), "work" (work:N, a loop of known instructions), or None.
    known_cost: str | None = "spin"
    # Its figures are also shown in µs, estimated through the raw baseline's native CPU time per
    # the same unit, measured in the same run (compare.run: the native reference).
    estimated_in_us: bool = False

    # How a round is run: "wrk" (the saturating sweep, read at its peak level) or the measure's
    # own procedure (`run_round`), as the open-model latency runs k6 at fixed rates.
    procedure: str = "wrk"
    in_table: bool = True  # a column of the compare table (else in the details only)
    per_request: bool = True  # its unit is per request ("µs/req"); memory's is not

    @property
    def per_unit(self) -> str:
        """Its unit as a column says it: `µs/req`, or `MiB` for a figure not per request."""
        return f"{self.unit}/req" if self.per_request else self.unit

    # Its figures do not move when another server runs beside it (a count, not a time): a
    # compare of such measures only may measure several contenders at once (--jobs).
    side_by_side: bool = False

    @property
    def timed(self) -> bool:
        """It counts time (µs): what a spin's known CPU time is a cost in."""
        return self.known_cost == "spin"

    def check(self) -> None:
        """Whether this machine can take the measure: UsageError or RunError before anything
        runs, naming what to install or use instead."""

    def prepare(self, serve: ServeSettings, out_dir: Path) -> ServeSettings:
        """How the server runs for this measure (a wrapper, a longer readiness timeout); files
        it needs go under `out_dir`."""
        return serve

    def watch(self, server: RunningServer) -> Callable[[], str | None] | None:
        """What to watch of the server from its start to its stop (memory's ceiling): a
        function that stops watching and says why the server had to be stopped, if it was."""
        return None

    def after_stop(self, server: RunningServer) -> None:
        """What to clean up once a round's server is stopped (a tool's leftovers)."""

    def prepare_load(self, load: LoadSettings) -> LoadSettings:
        """What load a round sends for this measure (its levels, a fixed count of requests)."""
        return load

    def probe(self, server: RunningServer) -> Probe | None:
        """What to do around each measured level of a round, if anything."""
        return None

    def read(self, wire: WireRound) -> float | None:
        """The round's value per completed request; None when the round cannot give one."""
        raise NotImplementedError

    def read_figures(self, wire: WireRound) -> dict[str, float]:
        """What a round of the wrk procedure gives, by figure name: `read`'s value under the
        measure's name, or a measure's several figures (memory: retained, RSS, USS)."""
        value = self.read(wire)
        return {} if value is None else {self.name: value}

    def run_round(
        self, server: RunningServer, load: LoadSettings, out_dir: Path, name: str
    ) -> Reading:
        """A measure with a procedure of its own: what one round reads."""
        raise NotImplementedError

    def figure(self, name: str) -> Measure:
        """One of the figures this measure reads (`latency:p99@1000` is latency's `p99@1000`),
        shown and compared like a measure of its own."""
        raise KeyError(name)

    def figures(self, load: LoadSettings) -> tuple[str, ...]:
        """The names of what a round reads: the measure itself, or its figures."""
        return (self.name,)

    def flags(self, values: list[dict[str, float]]) -> list[str]:
        """What makes a set's figures suspect, from its rounds' values."""
        return []

    def format(self, value: float, digits: int | None = None) -> str:
        return f"{value:,.{self.digits if digits is None else digits}f}"

    def describe(self) -> dict[str, Any]:
        """What compare.json says of the measure: its DESCRIBED attributes."""
        return {key: getattr(self, key) for key in DESCRIBED}


@dataclass(frozen=True, kw_only=True)
class Figure(Measure):
    """One of several figures a measure reads in a round (latency's p99 at 1,000 req/s, memory's
    peak RSS): named, shown and compared like a measure of its own, and read by its measure."""

    name: str
    unit: str
    title: str
    short: str
    blind_to: str
    digits: int = 1
    known_cost: str | None = None
    procedure: str = "wrk"
    in_table: bool = True
    per_request: bool = True


def per_request(total: float | None, requests: int) -> float | None:
    """`total` spread over the completed requests, None when either is missing."""
    if total is None or requests <= 0 or not math.isfinite(total):
        return None
    return total / requests


def combined(probes: list[Probe]) -> Probe | None:
    """One probe that runs every one of `probes` around a level, merging what they return."""
    if not probes:
        return None

    def start(concurrency: int) -> Callable[[], dict[str, Any]]:
        finishes = [probe(concurrency) for probe in probes]

        def finish() -> dict[str, Any]:
            merged: dict[str, Any] = {}
            for one in reversed(finishes):  # the last started ends first
                merged.update(one())
            return merged

        return finish

    return start
