"""Which contenders the next round of a compare measures: every one, for a fixed number of rounds;
or, with a precision target, rounds until every set's interval is narrow enough or the time
budget is spent.

The precise mode is a fixed-width sequential procedure (Chow and Robbins): after at least
`min_rounds` rounds of everyone, a set whose 95% half-width (of its overhead in the run's headline
measure, paired with its reference round by round) is still above the target gets another round,
together with its reference, since a difference needs both sides measured in the same round.
The widest intervals go first, so that when the budget cannot fit everyone, the rounds go where
the variance is. The target is in the measure's unit (±2 µs), or a share of each set's own cost
(±0.1%), for a measure whose costs differ by orders of magnitude between sets.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.experiments.compare.contenders import Entry

DEFAULT_MIN_ROUNDS = 3
# A precise compare's rounds, unless the user chose: 1 s of wrk with no warm-up. In three minutes
# on this 2-core VM, `compare -m each --precision` fit 13 such rounds against 4 of the default
# 3 s with a 1 s warm-up, and its half-widths came out about half as wide (Starlette ±7-25 µs
# against ±4-47, Flask ±31-71 against ±40-245; docs/precision.md).
PRECISE_DURATION_S = 1.0
PRECISE_WARMUP_S = 0.0
PRECISE_BUDGET_S = 180.0  # --precision's wall time unless --budget says
STOP_ROUNDS = 5  # the fewest paired rounds a set may be called precise on
# A compare given neither --repeat nor --precision still owes every set an interval: at least
# three rounds of everyone (Student's t on two rounds is ±12.7 standard errors, on three ±4.3),
# then, within a minute, more rounds for the sets whose interval still touches zero. The design
# card's `compare -t flask -m none,all` fits 5-8 such rounds of 1 s in a minute on this VM.
DEFAULT_BUDGET_S = 60.0
MAX_ROUNDS = 60  # a bound on the loop, whatever the budget: 60 rounds is already ±t·s/7.7


@dataclass(frozen=True)
class Precision:
    target: float  # the 95% half-width every set must reach, in the measure's unit
    budget_s: float  # wall time for the whole compare, the ceiling's run included
    measure: str = "cpu"  # whose overheads must be that precise: the run's headline
    # `target` is a share of each set's own cost (0.001: ±0.1% of it), not a width in the unit.
    of_cost: bool = False
    min_rounds: int = DEFAULT_MIN_ROUNDS
    # Also precise enough: a half-width at most this share of the overhead itself (0.5: the
    # interval is at least twice clear of zero), for a cost too large to need ±target.
    clear_of_zero: float | None = None
    # Only these sets must be precise (the demo's headlines); None: every set.
    focus: frozenset[tuple[str, ...]] | None = None
    # Asked for by the user (--precision): a set that misses it fails the command. The default
    # rounds' goal is not a promise: a set still wide at the end is reported, not failed.
    required: bool = True

    def width_for(self, entry: Entry) -> float | None:
        """The half-width `entry` must reach; None when it is relative and there is no cost."""
        if not self.of_cost:
            return self.target
        cost = entry.cost(self.measure)
        return None if cost is None else self.target * abs(cost.median)

    def describe(self, unit: str) -> str:
        if self.of_cost:
            return f"±{100 * self.target:g}% of each set's cost"
        return f"±{self.target:g} {unit}"

    def met_by(self, entry: Entry) -> bool:
        width = half_width(entry, self.measure)
        overhead = entry.overhead(self.measure)
        if width is None or overhead is None:
            return False
        # Clear of zero by the margin asked for: a significance claim, which Student's t keeps
        # honest on as few as the fixed rounds (its interval is wide there: 4.3 standard errors
        # on three rounds), so it may stop at the first look.
        if self.clear_of_zero is not None and width <= self.clear_of_zero * abs(overhead.median):
            return overhead.n >= self.min_rounds
        # Precise to ±target, not on fewer than STOP_ROUNDS pairs: three rounds that happen to
        # agree give a narrow interval by luck (the variance estimated from three values is
        # itself that noisy), and a set that stopped there would never be measured again.
        wanted = self.width_for(entry)
        return wanted is not None and width <= wanted and overhead.n >= STOP_ROUNDS

    def wanted(self, entry: Entry) -> bool:
        """A set this precision is for: measured against a reference (a raw baseline is only
        there to be subtracted), and in the focus if there is one."""
        in_focus = self.focus is None or entry.contender.stack in self.focus
        return entry.reference is not None and not entry.invalid and in_focus


def default_rounds(measure: str, budget_s: float = DEFAULT_BUDGET_S) -> Precision:
    """The rounds of a compare that chose neither --repeat nor --precision: three of everyone,
    then rounds until every overhead is clear of zero by twice its half-width, or a minute."""
    return Precision(
        target=0.0, budget_s=budget_s, measure=measure, clear_of_zero=0.5, required=False
    )


def half_width(entry: Entry, measure: str) -> float | None:
    """The width that must shrink: the overhead's, None before two paired rounds."""
    overhead = entry.overhead(measure)
    return overhead.half_width if overhead is not None else None


def missed(entries: Sequence[Entry], precision: Precision, unit: str = "µs") -> list[str]:
    """`label (±x µs after n rounds)` for each set whose interval is still wider than the target."""
    found = []
    for entry in entries:
        if precision.wanted(entry) and not precision.met_by(entry):
            width = half_width(entry, precision.measure)
            shown = f"±{width:.1f} {unit}" if width is not None else "no interval"
            found.append(f"{entry.label} ({shown} after {len(entry.ok_rounds)} rounds)")
    return found


@dataclass
class Schedule:
    """The rounds of one compare: `next()` says which entries to measure in the next round."""

    entries: list[Entry]
    repeat: int
    precision: Precision | None = None
    run_s: list[float] = field(default_factory=list)  # wall time of each measured run so far
    rounds: int = 0
    budget_spent: bool = False

    @property
    def fixed_rounds(self) -> int:
        if self.precision is None:
            return self.repeat
        return max(self.repeat, self.precision.min_rounds)

    def next(self, elapsed_s: float) -> list[int]:
        """Indices of the entries to measure next, in table order; [] when done."""
        live = [i for i, e in enumerate(self.entries) if not e.invalid]
        if self.rounds < self.fixed_rounds:
            return self._take(live)
        if self.precision is None or self.rounds >= MAX_ROUNDS:
            return []
        precision = self.precision
        wide = [
            i
            for i in live
            if precision.wanted(self.entries[i]) and not precision.met_by(self.entries[i])
        ]
        if not wide:
            return []
        wide.sort(key=lambda i: -(half_width(self.entries[i], precision.measure) or float("inf")))
        per_run = statistics.median(self.run_s) if self.run_s else 0.0
        left = precision.budget_s - elapsed_s
        chosen: list[int] = []
        for index in wide:
            with_reference = {index, *self._reference_of(index)} - set(chosen)
            if per_run * (len(chosen) + len(with_reference)) > left:
                break
            chosen.extend(sorted(with_reference))
        if not chosen:
            self.budget_spent = True
            return []
        return self._take(sorted(set(chosen)))

    def _reference_of(self, index: int) -> list[int]:
        reference = self.entries[index].reference
        return [i for i, e in enumerate(self.entries) if e is reference and not e.invalid]

    def _take(self, indices: list[int]) -> list[int]:
        self.rounds += 1
        return indices
