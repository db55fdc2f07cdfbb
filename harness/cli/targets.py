"""`harness targets`: the target table and the middlewares."""

from __future__ import annotations

import click
from rich.table import Table

from harness.cli.console import console
from middleware.stack import ORDER
from targets.table import TARGETS


@click.command()
def targets() -> None:
    """List the targets and the middlewares."""
    table = Table(title="targets")
    for column in ("target", "framework", "server", "worker class", "baseline"):
        table.add_column(column)
    for t in TARGETS.values():
        table.add_row(t.name, t.framework, t.server, t.worker_class, t.baseline or "—")
    console.print(table)
    console.print(f"middlewares, outermost first: {', '.join(ORDER)}")
    console.print("a stack is none, all, or names joined by ',' or '+'")
    console.print("spin:N (e.g. spin:20us) burns N of CPU per request, to calibrate; never in all")
