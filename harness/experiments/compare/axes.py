"""An axis across which the same contender is measured more than once, in the same interleaved
rounds: environments (`--python`) and variants (`--variant`). Each contender at each value of the
axis is compared with the same contender at the axis's first value, paired round by round, in
every measure: the change an upgrade or a configuration makes per request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.experiments.compare.contenders import Contender, Entry
from harness.stats.intervals import Estimate, estimate_dict

Axis = Literal["python", "variant"]  # the Contender field that holds the axis's value


@dataclass
class AxisRow:
    """One contender at one value of an axis, against the same contender at the first value."""

    axis: Axis
    value: str
    entry: Entry
    reference: Entry | None  # the first value's; None for the first itself

    @property
    def name(self) -> str:
        """The contender's label without this axis's value."""
        return self.entry.label.replace(f"{self.value}:", "", 1)

    def difference(self, measure: str) -> Estimate | None:
        return None if self.reference is None else self.entry.difference(self.reference, measure)

    def to_dict(self, measures: Iterable[str]) -> dict[str, Any]:
        measures = list(measures)
        return {
            self.axis: self.value,
            "name": self.name,
            "label": self.entry.label,
            "reference": self.reference.label if self.reference else None,
            "costs": {m: estimate_dict(self.entry.cost(m)) for m in measures},
            "differences": {m: estimate_dict(self.difference(m)) for m in measures},
        }


def axis_rows(entries: list[Entry], axis: Axis, values: Sequence[str]) -> list[AxisRow]:
    """Every contender at every value of `axis`, grouped by contender, each against the first
    value's; [] with fewer than two values."""
    if len(values) < 2:
        return []
    by_key = {(getattr(e.contender, axis), *_across(e, axis)): e for e in entries}
    rows = []
    for key in dict.fromkeys(_across(e, axis) for e in entries):
        first = by_key.get((values[0], *key))
        for value in values:
            entry = by_key.get((value, *key))
            if entry is not None:
                rows.append(AxisRow(axis, value, entry, first if entry is not first else None))
    return rows


def _across(entry: Entry, axis: Axis) -> tuple[Contender, str]:
    """What an entry is apart from its value on `axis`."""
    contender = entry.contender
    if axis == "python":
        return dataclasses.replace(contender, python=None), entry.server
    return dataclasses.replace(contender, variant=None), entry.server
