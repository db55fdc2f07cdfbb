"""`harness system show|tune|reset`: the click layer over harness.machine.system."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.machine.system import (
    DEFAULT_HALT_POLL_NS,
    ENV_ROOT,
    HALTPOLL_PARAMS,
    SystemState,
    advice,
    cpu_ranges,
    inspect,
)
from harness.machine.tune import Outcome, reset, state_path, tune


@click.group("system")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default="/",
    show_default=True,
    envvar=ENV_ROOT,
    hidden=True,  # tests point it at a fake /sys
    help="The tree that holds sys/ and var/tmp/.",
)
@click.pass_context
@one_line_errors
def system(ctx: click.Context, root: Path) -> None:
    """Show, tune and reset the CPU idle and frequency settings that change what a per-request
    cost measures (like pyperf system).

    With the haltpoll cpuidle driver and guest_halt_poll_ns=0 (this project's VM), an idle CPU
    halts at once and every response that wakes wrk's CPU costs the server microseconds:
    `harness system tune` (as root) makes idle CPUs poll first; `harness system reset` puts the
    saved originals back.
    """
    ctx.obj = root


def _print_outcome(outcome: Outcome, root: Path) -> None:
    for change in outcome.changes:
        console.print(escape(change.describe(root)), soft_wrap=True)
    console.print(escape(outcome.message), soft_wrap=True)


@system.command("show")
@click.pass_obj
@one_line_errors
def show(root: Path) -> None:
    """Show the idle and frequency settings, with advice.

    The cpuidle driver and governor, haltpoll's parameters, and per CPU the cpufreq governor
    and the cpuidle states (exit latency, disabled)."""
    state = inspect(root=root)
    console.print(_settings_table(state))
    notes = advice(state)
    for note in notes:
        console.print(escape(f"advice: {note}"), soft_wrap=True)
    if not notes:
        console.print("advice: none, nothing here should distort a measurement")
    saved = state_path(root)
    if saved.exists():
        console.print(
            escape(f"tuned: the originals are saved in {saved}; `harness system reset` restores")
        )


def _settings_table(state: SystemState) -> Table:
    table = Table(title="system", show_header=True)
    table.add_column("setting")
    table.add_column("value")
    table.add_row("cpuidle driver", state.cpuidle_driver or "—")
    table.add_row("cpuidle governor", state.cpuidle_governor or "—")
    for name in HALTPOLL_PARAMS:
        if name in state.haltpoll:
            table.add_row(f"haltpoll {name}", str(state.haltpoll[name]))
    if not state.haltpoll:
        table.add_row("haltpoll", "—")
    for cpus, cpu in state.groups():
        label = f"CPU {cpu_ranges(cpus)}"
        if cpu.governor is not None:
            table.add_row(f"{label} cpufreq governor", cpu.governor)
        if cpu.idle_states:
            table.add_row(f"{label} idle states", ", ".join(s.describe() for s in cpu.idle_states))
    if not any(c.governor for c in state.cpus):
        table.add_row("cpufreq", "—")
    return table


@system.command("tune")
@click.option(
    "--halt-poll-ns",
    type=click.IntRange(1, 2**32 - 1),
    default=DEFAULT_HALT_POLL_NS,
    show_default=True,
    help="haltpoll's guest_halt_poll_ns: how long an idle CPU polls before it halts.",
)
@click.pass_obj
@one_line_errors
def tune_command(root: Path, halt_poll_ns: int) -> None:
    """Make idle CPUs poll first, and CPUs run at full speed (root).

    Sets haltpoll's guest_halt_poll_ns and the cpufreq governor performance, where present,
    after saving the original values (/var/tmp/mwbench-system.json; a second tune keeps the
    first originals)."""
    _print_outcome(tune(root=root, halt_poll_ns=halt_poll_ns), root)


@system.command("reset")
@click.pass_obj
@one_line_errors
def reset_command(root: Path) -> None:
    """Put back what `harness system tune` changed (root).

    Restores the saved original values and deletes the state file."""
    _print_outcome(reset(root=root), root)
