"""Two compares side by side: per set, the change from A to B in each measure, with a 95%
interval from the two runs' rounds (Welch: rounds of two runs cannot be paired), and the gate
that makes it a CI check against a stored baseline.

What changes is a set's overhead over its reference (the figure a middleware or an app is
judged by, and steadier between runs than a raw cost: the machine's speed moves both sides);
a set with no reference (a raw baseline) is compared by its cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import UsageError
from harness.experiments.compare.contenders import Entry
from harness.experiments.compare.result import CompareReport
from harness.load.files import versioned
from harness.measures.registry import get_measure
from harness.stats.intervals import Estimate, estimate, welch

Quantity = Literal["overhead", "cost"]
# The settings of a compare that change its figures by themselves (compare.plan).
MEASURED_BY = (
    "requests",
    "paced",
    "levels",
    "duration_s",
    "warmup_s",
    "rates",
    "worker_class",
    "workers",
    "pinning",
    "log_output",
    "wrapper",
    "passed_env",
    "request",
)


def _samples(entry: Entry, measure: str, quantity: Quantity) -> list[float]:
    """What the run measured of the set, round by round: its cost, or its paired overhead."""
    if quantity == "cost":
        return entry.values(measure)
    assert entry.reference is not None
    return entry.differences(entry.reference, measure)


def signed(e: Estimate, digits: int = 1) -> str:
    """`+12.3 ± 4.5`: a change, with its sign."""
    text = f"{e.median:+,.{digits}f}"
    return text + (f" ± {e.half_width:,.{digits}f}" if e.half_width is not None else "")


@dataclass(frozen=True)
class Change:
    """One set in one measure, from A to B."""

    label: str
    measure: str
    quantity: Quantity
    before: Estimate | None  # A's
    after: Estimate | None  # B's
    change: Estimate | None  # B minus A

    @property
    def pct(self) -> float | None:
        """The change as a share of A's value, in percent."""
        if self.change is None or self.before is None or not self.before.median:
            return None
        return 100 * self.change.median / abs(self.before.median)

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.label,
            "measure": self.measure,
            "quantity": self.quantity,
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
            "change": self.change.to_dict() if self.change else None,
            "change_pct": self.pct,
        }


@dataclass(frozen=True)
class Regression:
    """The gate: a change above `limit` (in the measure's unit, or a share of A's value) that
    the two runs' rounds tell from zero."""

    limit: float
    measure: str
    relative: bool = False

    def describe(self, unit: str) -> str:
        return f"+{100 * self.limit:g}%" if self.relative else f"+{self.limit:g} {unit}"

    def exceeded_by(self, change: Change) -> bool:
        found = change.change
        if change.measure != self.measure or found is None:
            return False
        # Significance before a claim: without an interval (one round a side) only the median.
        if found.has_interval and not found.significant:
            return False
        if self.relative:
            return change.pct is not None and change.pct > 100 * self.limit
        return found.median > self.limit


@dataclass
class CompareDiff:
    a: CompareReport
    b: CompareReport
    measures: tuple[str, ...]  # measured in both, B's order
    changes: list[Change]
    only_a: list[str]
    only_b: list[str]
    gate: Regression | None = None

    @property
    def regressions(self) -> list[Change]:
        gate = self.gate
        return [c for c in self.changes if gate is not None and gate.exceeded_by(c)]

    @property
    def unjudged(self) -> list[str]:
        """The sets of A the gate cannot judge: one run has no figure of the gate's measure for
        it (every round failed), or B has not the set at all. A gate that passed them would
        vouch for what was not measured."""
        gate = self.gate
        if gate is None:
            return []
        empty = [c.label for c in self.changes if c.measure == gate.measure and c.change is None]
        return [*empty, *self.only_a]

    def regression_lines(self) -> list[str]:
        assert self.gate is not None
        unit = get_measure(self.gate.measure).unit
        return [
            f"{c.label}: {c.quantity} {signed(c.change)} {unit}"  # type: ignore[arg-type]
            + (f" ({c.pct:+.1f}%)" if c.pct is not None else "")
            + f" > {self.gate.describe(unit)}"
            for c in self.regressions
        ]

    @property
    def measured_differently(self) -> list[str]:
        """How B was measured unlike A, where that moves the figures by itself (a window of
        another size changes the instructions a request is charged with; another rate, every
        latency): each `name: A → B`."""
        found = []
        for key in MEASURED_BY:
            before, after = getattr(self.a.settings, key), getattr(self.b.settings, key)
            if before != after:
                found.append(f"{key}: {before} → {after}")
        return found

    def to_dict(self) -> dict[str, Any]:
        return versioned(
            "compare-diff",
            1,
            {
                "a": str(self.a.json_path),
                "b": str(self.b.json_path),
                "measures": list(self.measures),
                "measured_differently": self.measured_differently,
                "changes": [c.to_dict() for c in self.changes],
                "only_in_a": self.only_a,
                "only_in_b": self.only_b,
                "gate": dataclasses.asdict(self.gate) if self.gate else None,
                "regressions": self.regression_lines() if self.gate else [],
                "unjudged": self.unjudged,
            },
        )


def _change(mine: Entry, theirs: Entry, measure: str) -> Change:
    quantity: Quantity = (
        "overhead" if mine.reference is not None and theirs.reference is not None else "cost"
    )
    before, after = _samples(theirs, measure, quantity), _samples(mine, measure, quantity)
    return Change(
        mine.label,
        measure,
        quantity,
        estimate(before) if before else None,
        estimate(after) if after else None,
        welch(after, before),
    )


def diff_compares(
    a: CompareReport, b: CompareReport, gate: Regression | None = None
) -> CompareDiff:
    """Every set of B that A measured too, in every measure both runs read. UsageError when the
    two share no set or no measure, or the gate's measure is not in both."""
    measures = tuple(m for m in b.measures if m in a.measures)
    if not measures:
        raise UsageError(
            f"the two compares share no measure: A has {', '.join(a.measures)}, "
            f"B {', '.join(b.measures)}"
        )
    if gate is not None and gate.measure not in measures:
        raise UsageError(f"the gate's measure, {gate.measure}, is not in both compares")
    by_label = {e.label: e for e in a.entries}
    shared = [e for e in b.entries if e.label in by_label]
    if not shared:
        raise UsageError("the two compares share no set (sets are matched by name)")
    changes = [_change(e, by_label[e.label], m) for m in measures for e in shared]
    labels_b = {e.label for e in b.entries}
    return CompareDiff(
        a,
        b,
        measures,
        changes,
        only_a=[e.label for e in a.entries if e.label not in labels_b],
        only_b=[e.label for e in b.entries if e.label not in by_label],
        gate=gate,
    )


def changes_for(diff: CompareDiff, measure: str) -> Sequence[Change]:
    return [c for c in diff.changes if c.measure == measure]
