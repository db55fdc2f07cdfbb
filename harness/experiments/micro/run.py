"""`micro()`: check every app, then time them interleaved, target by target."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.experiments.micro.allocations import count_allocations
from harness.experiments.micro.callables import EMPTY_APPS, build_app, make_driver
from harness.experiments.micro.counted import Job, count
from harness.experiments.micro.driver import Driver, MicroError, event_loop, loop_name
from harness.experiments.micro.plan import (
    INTERFACES,
    MICRO_TARGETS,
    MicroOptions,
    check_options,
    check_targets,
)
from harness.experiments.micro.replay import MicroRequest, check_reply
from harness.experiments.micro.result import MicroReport, SetResult, TargetResult
from harness.experiments.micro.timing import CLOCKS, INSTRUCTIONS, Series, overhead, time_drivers
from harness.machine.environment import environment
from harness.stats.intervals import paired_differences
from middleware.stack import stack_name
from targets.table import Target

__all__ = [
    "EMPTY",
    "INTERFACES",
    "MICRO_TARGETS",
    "MicroOptions",
    "check_targets",
    "measure_target",
    "micro",
    "micro_environment",
]

EMPTY = "empty"  # the label of the loop calibration: the cheapest app of the interface


def measure_target(
    target: Target,
    stacks: Sequence[tuple[str, ...]],
    options: MicroOptions,
    *,
    loop: asyncio.AbstractEventLoop,
) -> TargetResult:
    """One target: its empty app and each stack (the first is the reference), checked, then
    timed interleaved; with `options.memory`, each one's allocations counted first."""
    drivers: dict[str, Driver] = {}
    try:
        statuses = _start_checked(target, stacks, options, loop, drivers)
        # Allocations before the timing: what a set keeps is then measured on a young process
        # whatever the machine's speed. After it, a list that keeps every request holds as many
        # entries as the timing ran, and a window in which its array moves is charged the whole
        # new array (its old one was allocated before the window): KeepsOneKB read 1,057 B a
        # request on a fast day and 1,327 on a slow one.
        allocations = (
            {name: count_allocations(d) for name, d in drivers.items()} if options.memory else {}
        )
        series = _measured(target, stacks, options, drivers)
    finally:
        for driver in drivers.values():
            driver.close()
    reference = series[stack_name(stacks[0], target.layers)]
    results = []
    for stack in stacks:
        name = stack_name(stack, target.layers)
        one = series[name]
        result = SetResult(name, stack, one, statuses[name], allocations=allocations.get(name))
        if stack != stacks[0]:
            result.overhead_values_us = paired_differences(one.values_us, reference.values_us)
            result.overhead = overhead(one.values_us, reference.values_us)
        results.append(result)
    return TargetResult(
        target.name, target.interface, target.framework, series[EMPTY], results, spec=target
    )


def _start_checked(
    target: Target,
    stacks: Sequence[tuple[str, ...]],
    options: MicroOptions,
    loop: asyncio.AbstractEventLoop,
    drivers: dict[str, Driver],
) -> dict[str, int]:
    """A driver for the interface's empty app and for each stack's, put in `drivers` as each
    is made (so that the caller closes them all, even when one fails), every stack's checked
    for its answer; the status each answered with, by set name. MicroError names the set that
    cannot be built or answers wrongly."""
    request, log_output = options.replayed, options.log_output
    drivers[EMPTY] = make_driver(target.interface, EMPTY_APPS[target.interface], request, loop=loop)
    statuses: dict[str, int] = {}
    for stack in stacks:
        name = stack_name(stack, target.layers)
        try:
            app = build_app(target, stack, log_output)
        except ValueError as exc:
            raise MicroError(f"{target.name} -m {name}: {exc}") from None
        drivers[name] = make_driver(
            target.interface, app, request, loop=loop, log_output=log_output
        )
        reply = drivers[name].check()
        problems = check_reply(reply, request, stack)
        if problems:
            raise MicroError(
                f"{target.name} -m {name} answers wrongly, not timed: " + "; ".join(problems)
            )
        statuses[name] = reply.status
    return statuses


def _measured(
    target: Target,
    stacks: Sequence[tuple[str, ...]],
    options: MicroOptions,
    drivers: dict[str, Driver],
) -> dict[str, Series]:
    """Every app's series, by set name: timed interleaved on `options.clock`, or its
    instructions counted."""
    if options.clock == INSTRUCTIONS:
        return _counted(target, stacks, options.replayed, options.log_output, options.repeat)
    for driver in drivers.values():
        driver.clock = CLOCKS[options.clock][0]
    return time_drivers(
        drivers, repeat=options.repeat, requests=options.requests, batch_s=options.batch_s
    )


def _counted(
    target: Target,
    stacks: Sequence[tuple[str, ...]],
    request: MicroRequest,
    log_output: str,
    repeat: int,
) -> dict[str, Series]:
    """Each app's instructions per request, counted under callgrind in a child of its own
    (harness.experiments.micro.counted): deterministic, so one after the other."""
    found = {EMPTY: count(Job(target, (), request, log_output, empty=True), repeat, EMPTY)}
    for stack in stacks:
        name = stack_name(stack, target.layers)
        found[name] = count(Job(target, stack, request, log_output), repeat, name)
    return found


def micro_environment(
    loop: asyncio.AbstractEventLoop | None = None, clock: str = "wall"
) -> dict[str, Any]:
    """The machine's record, with what in-process timing also depends on."""
    if clock == INSTRUCTIONS:
        timer = "callgrind: instructions counted in a child per app, PYTHONHASHSEED=0"
    else:
        name = CLOCKS[clock][1]
        info = time.get_clock_info(name)
        timer = f"{name}_ns ({info.implementation}, resolution {info.resolution:g} s)"
    return environment(
        timer=timer,
        event_loop=loop_name(loop) if loop is not None else None,
        gc_enabled=gc.isenabled(),
    )


def micro(
    options: MicroOptions | None = None,
    /,
    *,
    echo: Callable[[str], None] = lambda line: None,
    **fields: Any,
) -> MicroReport:
    """Measure each set of `sets` on each target in-process; `none` is always measured (first)
    as the reference, and the empty app of the interface as the loop's own cost. Without
    `options`, its fields are given as keywords: `micro(targets=["flask"], sets=[("all",)])`.

    A set is passed to the target's `create_app` as it is, so any stack the middleware package
    builds can be measured. Every app is checked (status, body, its middlewares' headers) before
    it is timed: one that answers wrongly raises MicroError and nothing is timed. `request` is
    what each app is sent (a MicroRequest, or a route's name: replay.ROUTES); `repeat` timed
    batches of `requests` each (None: as many as last about `batch_s`); `log_output` where the
    middlewares log. `clock` is what a batch is timed with (timing.CLOCKS): wall time, or the
    thread's CPU time; or `instructions`, counted under callgrind. `memory`: each app's
    allocations per request, and what it keeps, are counted too
    (harness.experiments.micro.allocations)."""
    if options is None:
        options = MicroOptions(**fields)
    elif fields:
        raise TypeError(f"micro() takes options or their fields, not both: {sorted(fields)}")
    chosen = check_options(options)
    wanted = options.stacks
    started = time.monotonic()
    results: list[TargetResult] = []
    with event_loop() as loop:
        for target in chosen:
            echo(f"micro: {target.name}: {len(wanted) + 1} apps × {options.repeat} repeats ...")
            results.append(measure_target(target, wanted, options, loop=loop))
        env = micro_environment(loop, options.clock)
    return MicroReport(
        targets=results,
        settings=options.record(),
        environment=env,
        wall_s=time.monotonic() - started,
    )
