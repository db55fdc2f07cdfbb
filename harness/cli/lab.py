"""`harness lab up|down|status`: two network namespaces joined by a veth pair, a thin layer over
harness.machine.lab."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.machine.lab import DEFAULT_NAME, Lab, LabStatus

name_option = click.option(
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    help="The lab's name: its namespaces are NAME-server and NAME-client.",
)


def _harness() -> str:
    """How to call this harness from `ip netns exec`: by name if PATH finds this one."""
    me = Path(sys.argv[0]).resolve()
    on_path = shutil.which("harness")
    return "harness" if (on_path and Path(on_path).resolve() == me) or not me.exists() else str(me)


def _describe(status: LabStatus) -> str:
    lab = status.lab
    if not status.present:
        return f"lab {lab.name}: down (no namespace {lab.server_ns} or {lab.client_ns})"
    state = "up" if status.up else "half made (harness lab down, then up, remakes it)"
    parts = [
        f"{ns} {' '.join(status.addresses.get(ns) or ['(no address up)'])}"
        + (f", {len(status.pids[ns])} processes inside" if status.pids.get(ns) else "")
        for ns in lab.namespaces
        if ns in status.present
    ]
    return f"lab {lab.name}: {state}: " + " <-veth-> ".join(parts)


@click.group()
@one_line_errors
def lab() -> None:
    """A second host on this machine: a server and a client network namespace joined by a veth
    pair, with addresses from 198.18.0.0/15 (RFC 2544's benchmarking block). Needs root."""


@lab.command()
@name_option
@one_line_errors
def up(name: str) -> None:
    """Create the namespaces (or keep them if up) and say the two commands to run."""
    from harness.machine.lab import commands, lab_up

    status = lab_up(Lab(name=name))
    serve, run = commands(status.lab, harness=_harness())
    console.print(_describe(status), soft_wrap=True)
    console.print(f"serve in the server namespace:\n  {serve}", soft_wrap=True, highlight=False)
    console.print(f"load it from the client namespace:\n  {run}", soft_wrap=True, highlight=False)
    console.print(f"remove it: harness lab down{'' if name == DEFAULT_NAME else ' --name ' + name}")


@lab.command()
@name_option
@one_line_errors
def down(name: str) -> None:
    """Remove both namespaces (and the veth pair); stops what still runs inside. Idempotent."""
    from harness.machine.lab import lab_down

    removed, stopped = lab_down(Lab(name=name))
    if stopped:
        console.print(f"stopped {len(stopped)} processes still inside: {stopped}")
    console.print(
        f"removed {' and '.join(removed)}" if removed else f"lab {name}: already down",
        soft_wrap=True,
    )


@lab.command()
@name_option
@one_line_errors
def status(name: str) -> None:
    """Whether the lab is up, its addresses, and what runs inside."""
    from harness.machine.lab import lab_status

    found = lab_status(Lab(name=name))
    console.print(_describe(found), soft_wrap=True)
