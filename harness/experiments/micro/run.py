"""`micro()`: check every app, then time them interleaved, target by target."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import UsageError
from harness.experiments.micro.allocations import count_allocations
from harness.experiments.micro.callables import EMPTY_APPS, build_app, make_driver
from harness.experiments.micro.counted import Job, count
from harness.experiments.micro.driver import Driver, MicroError, event_loop, loop_name
from harness.experiments.micro.replay import ROUTES, MicroRequest, check_reply
from harness.experiments.micro.result import MicroReport, SetResult, TargetResult
from harness.experiments.micro.timing import (
    CLOCKS,
    DEFAULT_BATCH_S,
    DEFAULT_REPEAT,
    INSTRUCTIONS,
    Series,
    overhead,
    time_drivers,
)
from harness.machine.environment import environment
from harness.measures import callgrind
from harness.stats.intervals import paired_differences
from middleware import sink
from middleware.stack import stack_name
from targets.table import TARGETS, Target, get_target

INTERFACES = ("wsgi", "asgi", "aiohttp")
MICRO_TARGETS = tuple(name for name, t in TARGETS.items() if t.interface in INTERFACES)
EMPTY = "empty"  # the label of the loop calibration: the cheapest app of the interface


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


def measure_target(
    target: Target,
    stacks: Sequence[tuple[str, ...]],
    *,
    request: MicroRequest,
    loop: asyncio.AbstractEventLoop,
    repeat: int,
    requests: int | None,
    batch_s: float,
    log_output: str,
    clock: str = "wall",
    memory: bool = False,
) -> TargetResult:
    """One target: its empty app and each stack (the first is the reference), checked, then
    timed interleaved; with `memory`, each one's allocations counted after."""
    drivers: dict[str, Driver] = {}
    statuses: dict[str, int] = {}
    try:
        drivers[EMPTY] = make_driver(
            target.interface, EMPTY_APPS[target.interface], request, loop=loop
        )
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
        # Allocations before the timing: what a set keeps is then measured on a young process
        # whatever the machine's speed. After it, a list that keeps every request holds as many
        # entries as the timing ran, and a window in which its array moves is charged the whole
        # new array (its old one was allocated before the window): KeepsOneKB read 1,057 B a
        # request on a fast day and 1,327 on a slow one.
        allocations = {name: count_allocations(d) for name, d in drivers.items()} if memory else {}
        if clock == INSTRUCTIONS:
            series = _counted(target, stacks, request, log_output, repeat)
        else:
            for driver in drivers.values():
                driver.clock = CLOCKS[clock][0]
            series = time_drivers(drivers, repeat=repeat, requests=requests, batch_s=batch_s)
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
    *,
    targets: Sequence[str | Target],
    sets: Sequence[tuple[str, ...]],
    repeat: int = DEFAULT_REPEAT,
    requests: int | None = None,
    batch_s: float = DEFAULT_BATCH_S,
    request: MicroRequest | str = "healthz",
    log_output: str = "null",
    clock: str = "wall",
    memory: bool = False,
    echo: Callable[[str], None] = lambda line: None,
) -> MicroReport:
    """Measure each set of `sets` on each target in-process; `none` is always measured (first)
    as the reference, and the empty app of the interface as the loop's own cost.

    A set is passed to the target's `create_app` as it is, so any stack the middleware package
    builds can be measured. Every app is checked (status, body, its middlewares' headers) before
    it is timed: one that answers wrongly raises MicroError and nothing is timed. `clock` is
    what a batch is timed with (timing.CLOCKS): wall time, or the thread's CPU time. `memory`:
    each app's allocations per request, and what it keeps, are counted too
    (harness.experiments.micro.allocations)."""
    chosen = check_targets(targets)
    if clock not in (*CLOCKS, INSTRUCTIONS):
        raise UsageError(
            f"unknown clock {clock!r}; valid: {', '.join((*CLOCKS, INSTRUCTIONS))}", param="clock"
        )
    if clock == INSTRUCTIONS:
        callgrind.find_valgrind()
    replay = ROUTES[request] if isinstance(request, str) else request
    sink.check_log_output(log_output)
    if repeat < 2:
        raise MicroError("repeat must be at least 2 (an interval needs two values)")
    wanted = [(), *dict.fromkeys(s for s in sets if s)]
    started = time.monotonic()
    results: list[TargetResult] = []
    with event_loop() as loop:
        for target in chosen:
            echo(f"micro: {target.name}: {len(wanted) + 1} apps × {repeat} repeats ...")
            results.append(
                measure_target(
                    target,
                    wanted,
                    request=replay,
                    loop=loop,
                    repeat=repeat,
                    requests=requests,
                    batch_s=batch_s,
                    log_output=log_output,
                    clock=clock,
                    memory=memory,
                )
            )
        env = micro_environment(loop, clock)
    return MicroReport(
        targets=results,
        settings={
            "repeat": repeat,
            "requests": requests if requests is not None else "auto",
            "batch_s": batch_s if requests is None else None,
            "request": replay.to_dict(),
            "log_output": log_output,
            "clock": clock,
            "memory": memory,
            "unit": "instructions" if clock == INSTRUCTIONS else "µs",
            "order": "interleaved, rotated each repeat",
            "sets": [stack_name(s) for s in wanted],
        },
        environment=env,
        wall_s=time.monotonic() - started,
    )
