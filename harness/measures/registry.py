"""Every measure there is, by name: the one place a measure is registered.

`--measure` chooses from here, compare.json names them, and a report loaded back finds them
here again.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import UsageError
from harness.measures.cpu import ServerCpu
from harness.measures.instructions import CallgrindInstructions, PerfInstructions
from harness.measures.latency import OpenModelLatency
from harness.measures.measure import Measure
from harness.measures.memory import ServerMemory
from harness.measures.qps import InverseQps

MEASURES: dict[str, Measure] = {}
# compare's default: server CPU time per request (the headline) and 1e6/QPS beside it.
DEFAULT_MEASURES = ("cpu", "qps")


def register(measure: Measure) -> Measure:
    """Make `measure` known by its name; a name already taken is a UsageError."""
    if measure.name in MEASURES and MEASURES[measure.name] is not measure:
        raise UsageError(f"a measure named {measure.name!r} is already registered")
    MEASURES[measure.name] = measure
    return measure


def get_measure(name: str) -> Measure:
    """A measure by name, or one of a measure's figures (`latency:p99@1000`)."""
    base, _, figure = name.partition(":")
    try:
        measure = MEASURES[base]
        return measure.figure(figure) if figure else measure
    except KeyError:
        raise UsageError(
            f"unknown measure {name!r}; valid: {', '.join(MEASURES)}", param="measures"
        ) from None


def resolve_measures(names: Sequence[str]) -> tuple[Measure, ...]:
    """The measures named, in order, each once; the first is the headline."""
    chosen = tuple(get_measure(name) for name in dict.fromkeys(names))
    if not chosen:
        raise UsageError(f"no measure given; valid: {', '.join(MEASURES)}", param="measures")
    return chosen


register(ServerCpu())
register(InverseQps())
register(CallgrindInstructions())
register(PerfInstructions())
register(OpenModelLatency())
register(ServerMemory())
