"""micro's first step: what it is asked to measure, checked before a single app is built.

MicroOptions is the one object a micro is asked with (the CLI builds it once from its options,
a variant's child process gets it pickled); check_options says what is wrong with it, naming
the setting, before anything is timed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import UsageError
from harness.experiments.micro.driver import MicroError
from harness.experiments.micro.replay import ROUTES, MicroRequest
from harness.experiments.micro.timing import CLOCKS, DEFAULT_BATCH_S, DEFAULT_REPEAT, INSTRUCTIONS
from harness.measures import callgrind
from middleware import sink
from middleware.stack import stack_name
from targets.table import TARGETS, Target, get_target

INTERFACES = ("wsgi", "asgi", "aiohttp")
MICRO_TARGETS = tuple(name for name, t in TARGETS.items() if t.interface in INTERFACES)


@dataclass(frozen=True, kw_only=True)
class MicroOptions:
    """What a micro is asked to measure, as given; the same settings for every target. What
    each field means: harness.experiments.micro.run.micro."""

    targets: Sequence[str | Target]
    sets: Sequence[tuple[str, ...]]
    repeat: int = DEFAULT_REPEAT
    requests: int | None = None  # per timed batch; None: as many as last about `batch_s`
    batch_s: float = DEFAULT_BATCH_S
    request: MicroRequest | str = "healthz"  # a request, or the name of one of ROUTES
    log_output: str = "null"
    clock: str = "wall"
    memory: bool = False

    @property
    def replayed(self) -> MicroRequest:
        """The request every app is sent: the one given, or the named route's."""
        return ROUTES[self.request] if isinstance(self.request, str) else self.request

    @property
    def stacks(self) -> list[tuple[str, ...]]:
        """The sets measured on each target: `none` first (the reference), then the others
        once each, in the order given."""
        return [(), *dict.fromkeys(s for s in self.sets if s)]

    def record(self) -> dict[str, Any]:
        """The settings as the report records them."""
        return {
            "repeat": self.repeat,
            "requests": self.requests if self.requests is not None else "auto",
            "batch_s": self.batch_s if self.requests is None else None,
            "request": self.replayed.to_dict(),
            "log_output": self.log_output,
            "clock": self.clock,
            "memory": self.memory,
            "unit": "instructions" if self.clock == INSTRUCTIONS else "µs",
            "order": "interleaved, rotated each repeat",
            "sets": [stack_name(s) for s in self.stacks],
        }


def check_options(options: MicroOptions) -> list[Target]:
    """The targets, each with an app to call in-process, and every other setting checked:
    MicroError or UsageError before any app is built."""
    chosen = check_targets(options.targets)
    if options.clock not in (*CLOCKS, INSTRUCTIONS):
        raise UsageError(
            f"unknown clock {options.clock!r}; valid: {', '.join((*CLOCKS, INSTRUCTIONS))}",
            param="clock",
        )
    if options.clock == INSTRUCTIONS:
        callgrind.find_valgrind()
    _ = options.replayed  # an unknown route's name: a KeyError, before any app is built
    sink.check_log_output(options.log_output)
    if options.repeat < 2:
        raise MicroError("repeat must be at least 2 (an interval needs two values)")
    return chosen


def check_targets(targets: Sequence[str | Target]) -> list[Target]:
    chosen = []
    for name in targets:
        target = get_target(name) if isinstance(name, str) else name
        if target.interface not in INTERFACES:
            raise MicroError(
                f"{target.name} has no app to call in-process; valid: {', '.join(MICRO_TARGETS)}"
            )
        chosen.append(target)
    if not chosen:
        raise MicroError(f"no target given; valid: {', '.join(MICRO_TARGETS)}")
    return chosen
