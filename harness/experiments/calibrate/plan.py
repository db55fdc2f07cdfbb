"""calibrate's first step: what it is asked to measure, checked before a single server starts.

A CalibrationRequest is taken as given (the CLI builds it once from its options); its plan is
the target, the kind of known cost the measures know (spin:N for the timed ones, work:N for
instructions), its amounts and the tolerance, each checked: a bad one is a UsageError naming the
keyword.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError
from harness.experiments.compare.rounds import Precision
from harness.load.settings import LoadSettings
from harness.measures.known import KnownCost, known_cost_of
from harness.measures.registry import get_measure
from harness.serving.settings import DEFAULT_SERVE, ServeSettings
from middleware.stack import BadSpin, parse_spin, parse_work
from targets.table import Target, get_target

DEFAULT_OUT_DIR = Path("_output/calibrate")
DEFAULT_REPEAT = 3
CALIBRATE_LOAD = LoadSettings(duration=3.0, warmup=1.0)
# The measures a spin's known CPU time is checked in, by default (the headline last, as the
# table has always shown them).
CALIBRATE_MEASURES = ("qps", "cpu")


@dataclass(frozen=True, kw_only=True)
class CalibrationRequest:
    """What a calibration is asked to measure, as given: built once (the CLI builds it from its
    options) and taken whole by plan_calibration. What each field means:
    harness.experiments.calibrate.run.calibrate."""

    target: str | Target
    costs: Sequence[int] | str | None = None
    repeat: int = DEFAULT_REPEAT
    serve: ServeSettings = DEFAULT_SERVE
    load: LoadSettings = CALIBRATE_LOAD
    measures: Sequence[str] = CALIBRATE_MEASURES
    tune: bool = True
    precision: Precision | None = None
    out_dir: Path | str = DEFAULT_OUT_DIR
    tolerance: float | None = None


@dataclass(frozen=True)
class CalibrationPlan:
    """A request checked: its target, the kind of known cost, its amounts (nanoseconds of spin
    or turns of work, ascending) and the tolerance chosen."""

    request: CalibrationRequest
    target: Target
    kind: KnownCost
    amounts: tuple[int, ...]
    tolerance: float

    @property
    def labels(self) -> list[str]:
        """Each amount's set, as compare names it: spin:20us, work:2000."""
        return [self.kind.label(n) for n in self.amounts]

    @property
    def sets(self) -> list[tuple[str, ...]]:
        """The sets compared: `none` (the reference), then one of each known cost."""
        return [(), *((label,) for label in self.labels)]

    @property
    def out_dir(self) -> Path:
        return Path(self.request.out_dir)


def plan_calibration(request: CalibrationRequest) -> CalibrationPlan:
    """The target, the kind of known cost, its amounts and the tolerance, checked: UsageError
    before any server starts."""
    spec = get_target(request.target) if isinstance(request.target, str) else request.target
    if spec.baseline is None:
        raise UsageError(
            f"{spec.name} takes no middleware: calibrate a framework target", param="target"
        )
    kind = known_cost_of([get_measure(m).known_cost for m in request.measures])
    amounts = _amounts(kind, request.costs)
    if request.repeat < 2:
        raise UsageError("repeat must be at least 2: an interval needs two rounds", param="repeat")
    chosen = kind.tolerance if request.tolerance is None else request.tolerance
    if not 0 <= chosen < math.inf:
        raise UsageError(f"tolerance is a finite share, 0 or more: {chosen}", param="tolerance")
    return CalibrationPlan(request, spec, kind, amounts, chosen)


def _amounts(kind: KnownCost, costs: Sequence[int] | str | None) -> tuple[int, ...]:
    """The amounts of `costs` (the kind's default when None), each in the middleware's range."""
    given = kind.default if costs is None else costs
    try:
        amounts = kind.parse(given) if isinstance(given, str) else tuple(sorted(set(given)))
        for amount in amounts:
            (parse_spin if kind.kind == "spin" else parse_work)(kind.label(amount))  # range check
    except BadSpin as exc:  # the middleware's words, as the costs' error
        raise UsageError(str(exc), param="costs") from None
    if not amounts:
        raise UsageError("no cost given", param="costs")
    return amounts
