"""`harness layers --app SPEC`: the middleware layers found in your app, the ones -m toggles."""

from __future__ import annotations

import click
from rich.table import Table

from harness.cli.choose import app_options, load_app
from harness.cli.console import console
from harness.cli.errors import one_line_errors
from targets.server_table import servers_for
from targets.table import INTERFACE_TARGETS, TARGETS


@click.command("layers")
@app_options
@one_line_errors
def layers(app: str | None, factory: bool, app_dir: str) -> None:
    """List the middleware layers of your app (--app), outermost first, as -m names them.

    Example: harness layers --app main.py:app
    """
    if app is None:
        raise click.UsageError("give --app SPEC (package.module:attr or path/to/file.py:attr)")
    info = load_app(app, factory, app_dir)
    raw = TARGETS[INTERFACE_TARGETS[info.interface]]
    console.print(
        f"{info.spec.target}: {info.framework}, {info.interface.upper()}; served by "
        f"{raw.server} (--server: {', '.join(servers_for(info.interface))}), compared with "
        f"{raw.name}",
        soft_wrap=True,
        markup=False,
    )
    table = Table(title="layers, outermost first", title_justify="left")
    for column in ("name (for -m)", "kind", "scope", "detail"):
        table.add_column(column)
    for layer in info.layers:
        table.add_row(layer["name"], layer["kind"], layer["scope"], layer["detail"])
    console.print(table)
    for note in info.untoggled:
        console.print(f"not toggled: {note}", soft_wrap=True, markup=False)
    if not info.layers:
        console.print("no layers found: -m can add spin:N or a middleware by import path")
    else:
        console.print(
            "-m each: none, each layer alone, all (the app as written); names join with '+'; "
            "spin:N and module:Name add a middleware innermost"
        )
