"""What a micro run found: per target, the loop's own cost and each set's, with overheads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.experiments.micro.allocations import Allocations
from harness.experiments.micro.timing import Series, overhead
from harness.load.files import versioned
from harness.measures.known import KNOWN_COSTS
from harness.measures.known_check import CheckRow, check_cost
from harness.stats.intervals import Estimate
from middleware.stack import is_known, spin_ns, stack_name, work_iterations
from targets.table import Target

SCHEMA = "micro"
# 1: unversioned; 2: the clock (wall or the thread's CPU time) in the settings; 3: allocations
VERSION = 3

INCLUDED = {
    "wsgi": "environ copy, app call with a no-op start_response, body iteration, close()",
    "asgi": "fresh scope, app call with uvicorn-like receive/send (no serialization)",
    "aiohttp": "aiohttp's RequestHandler from the parsed request: Request, router and "
    "middlewares, prepare() and write_eof() into a discarding transport",
}
EXCLUDED = (
    "socket I/O, HTTP parsing, the server's response serialization (WSGI/ASGI), per-request task"
)


@dataclass
class SetResult:
    name: str
    stack: tuple[str, ...]
    series: Series
    status: int
    overhead: Estimate | None = None  # against the target's `none`, paired by repeat
    overhead_values_us: list[float] = field(default_factory=list)
    allocations: Allocations | None = None  # per request, with `memory`

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "middlewares": list(self.stack),
            "status": self.status,
            **self.series.to_dict(),
            "overhead_us": self.overhead.to_dict() if self.overhead else None,
            "overhead_values_us": [round(v, 4) for v in self.overhead_values_us],
            "allocations": self.allocations.to_dict() if self.allocations else None,
        }


@dataclass
class TargetResult:
    target: str
    interface: str
    framework: str
    loop: Series  # the empty app: the measuring loop's own cost
    sets: list[SetResult]
    spec: Target | None = None  # what was measured, for whoever reads this in-process

    @property
    def none(self) -> SetResult | None:
        return next((s for s in self.sets if not s.stack), None)

    def find(self, stack: tuple[str, ...] | str) -> SetResult | None:
        name = stack if isinstance(stack, str) else stack_name(stack)
        return next((s for s in self.sets if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        none = self.none
        framework = overhead(none.series.values_us, self.loop.values_us) if none else None
        return {
            "target": self.target,
            "interface": self.interface,
            "framework": self.framework,
            "included": INCLUDED[self.interface],
            "loop": {"app": f"empty {self.interface} app", **self.loop.to_dict()},
            "none_minus_loop_us": framework.to_dict() if framework else None,
            "reference": "none",
            "sets": [s.to_dict() for s in self.sets],
        }


@dataclass
class MicroReport:
    targets: list[TargetResult]
    settings: dict[str, Any]
    environment: dict[str, Any]
    wall_s: float = 0.0

    @property
    def unit(self) -> str:
        """µs, or instructions (counted under callgrind)."""
        return str(self.settings.get("unit", "µs"))

    def find(self, target: str, stack: tuple[str, ...] | str) -> SetResult | None:
        for one in self.targets:
            if one.target == target:
                return one.find(stack)
        return None

    def to_dict(self) -> dict[str, Any]:
        checks = spin_checks(self)
        return versioned(
            SCHEMA,
            VERSION,
            {
                "kind": "micro",
                "unit": f"{self.unit}_per_request".replace("µs", "us"),
                "settings": self.settings,
                "environment": self.environment,
                "excluded": EXCLUDED,
                "targets": [t.to_dict() for t in self.targets],
                **(
                    {"spin_checks": [{"set": c.label, **c.check.to_dict()} for c in checks]}
                    if checks
                    else {}
                ),
                "wall_s": round(self.wall_s, 2),
            },
        )


def spin_checks(report: MicroReport, tolerance: float | None = None) -> list[CheckRow]:
    """Each measured set with a known cost (`spin:N` when timed, `work:N` when instructions are
    counted), against the same set without it (`none` for one alone), paired by repeat: its
    known cost against the measured difference, checked as `harness calibrate` checks it. A set
    whose twin was not measured is not checked."""
    counted = report.unit == "instructions"
    kind = KNOWN_COSTS["work" if counted else "spin"]
    chosen = kind.tolerance if tolerance is None else tolerance
    rows = []
    for one in report.targets:
        by_stack = {s.stack: s for s in one.sets}
        for s in one.sets:
            amount = work_iterations(s.stack) if counted else spin_ns(s.stack)
            base = by_stack.get(tuple(name for name in s.stack if not is_known(name)))
            if amount is None or base is None:
                continue
            label = f"{one.target} {s.name}" + (f" vs {base.name}" if base.stack else "")
            measured = overhead(s.series.values_us, base.series.values_us)
            check = check_cost(kind.known(amount), measured, chosen, report.unit)
            rows.append(CheckRow(label, "in-process", check))
    return rows
