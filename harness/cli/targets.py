"""`harness targets`: the target table, the servers each can run on, and the middlewares."""

from __future__ import annotations

import click
from rich.table import Table

from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from middleware.stack import ORDER
from targets.server_table import SERVERS, interface_name
from targets.table import TARGETS

DEFAULT_MARK = "●"
CAN_MARK = "✓"


@one_line_errors
def server_matrix() -> Table:
    """Targets × servers: which server each target can run on, and which is its default."""
    table = Table(title="servers (--server): ● the target's default, ✓ can serve it")
    table.add_column("target")
    for name in SERVERS:
        table.add_column(name, justify="center")
    for t in TARGETS.values():
        cells = [
            DEFAULT_MARK if name == t.server else CAN_MARK if s.serves(t.interface) else ""
            for name, s in SERVERS.items()
        ]
        table.add_row(t.name, *cells)
    return table


@click.command()
@one_line_errors
def targets() -> None:
    """List the targets, the servers they run on, and the middlewares."""
    table = Table(title="targets")
    for column in ("target", "framework", "interface", "server (default)", "baseline"):
        table.add_column(column)
    for t in TARGETS.values():
        table.add_row(t.name, t.framework, interface_name(t.interface), t.server, t.baseline or "—")
    console.print(table)
    console.print(server_matrix())
    for s in SERVERS.values():
        console.print(f"  {s.name}: {s.what}", soft_wrap=True, markup=False)
    console.print(f"middlewares, outermost first: {', '.join(ORDER)}")
    console.print("a stack is none, all, or names joined by ',' or '+'")
    console.print(
        "spin:N (e.g. spin:20us) burns N of CPU per request, work:N (e.g. work:2000) runs N turns "
        "of a loop of fixed instructions: to calibrate; never in all"
    )
