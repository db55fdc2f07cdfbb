"""The gate: a limit on what a set may cost over its reference, in one measure, for CI.

A set fails the gate when the median of its overhead is above the limit: in the measure's unit,
or as a share of its reference's cost (`+10%`). The `none` set is the framework against its raw
baseline, not a middleware's cost, and is never gated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.experiments.compare.contenders import Entry


@dataclass(frozen=True)
class Gate:
    limit: float  # in the measure's unit, or a fraction of the reference's cost (of_reference)
    measure: str = "cpu"
    of_reference: bool = False

    def describe(self, unit: str) -> str:
        return f"+{100 * self.limit:g}%" if self.of_reference else f"{self.limit:g} {unit}"

    def excess(self, entry: Entry) -> str | None:
        """How `entry` exceeds the limit, or None when it does not (or was not measured)."""
        overhead = entry.overhead(self.measure)
        if not entry.contender.stack or overhead is None or entry.reference is None:
            return None
        if not self.of_reference:
            return f"{overhead.median:.1f}" if overhead.median > self.limit else None
        base = entry.reference.cost(self.measure)
        if base is None or not base.median:
            return None
        share = overhead.median / abs(base.median)
        return f"{overhead.median:+.1f} ({100 * share:+.1f}%)" if share > self.limit else None

    def failures(self, entries: Sequence[Entry], unit: str) -> list[str]:
        found = []
        for entry in entries:
            if entry.contender.role == "set" and (excess := self.excess(entry)) is not None:
                found.append(f"{entry.label}: {excess} {unit}/request > {self.describe(unit)}")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "measure": self.measure, "of_reference": self.of_reference}
