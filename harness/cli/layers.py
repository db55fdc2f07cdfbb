"""`harness layers --app SPEC`: the middleware layers found in your app, the ones -m toggles
(harness.serving.userapp.layers finds them)."""

from __future__ import annotations

import json

import click
from rich.table import Table
from rich.text import Text

from harness.cli.choose import app_options, instrumentation_notes, load_app
from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from targets.server_table import servers_for
from targets.table import INTERFACE_TARGETS, TARGETS

# A middleware's arguments in the table, at most (prometheus-fastapi-instrumentator's run to
# ~900 characters): --json has them whole.
DETAIL_WIDTH = 60


def shortened(detail: str, width: int = DETAIL_WIDTH) -> str:
    """`detail` in at most `width` characters, from its first argument, then an ellipsis: cut
    after a whole argument when that keeps most of the width, else within one."""
    if len(detail) <= width:
        return detail
    head = detail[: width - 1]
    boundary = head.rfind(", ")
    if boundary >= width * 2 // 3:
        return head[:boundary] + ", …"
    return head.rstrip() + "…"


@click.command("layers")
@app_options
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON, details whole.")
@one_line_errors
def layers(app: str | None, factory: bool, app_dir: str, as_json: bool) -> None:
    """List the middleware layers of your app (--app), outermost first, as -m names them.

    Example: harness layers --app main.py:app
    """
    if app is None:
        raise click.UsageError("give --app SPEC (package.module:attr or path/to/file.py:attr)")
    info = load_app(app, factory, app_dir)
    raw = TARGETS[INTERFACE_TARGETS[info.interface]]
    if as_json:
        found = {
            "app": info.spec.target,
            "framework": info.framework,
            "interface": info.interface,
            "server": raw.server,
            "servers": list(servers_for(info.interface)),
            "compared_with": raw.name,
            "layers": [dict(layer) for layer in info.layers],
            "untoggled": list(info.untoggled),
            "instrumentation": list(info.instrumentation),
        }
        click.echo(json.dumps(found, indent=2))
        return
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
    for layer in info.layers:  # Text: an argument's brackets are not rich markup
        cells = (layer["name"], layer["kind"], layer["scope"], shortened(layer["detail"]))
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    if any(len(layer["detail"]) > DETAIL_WIDTH for layer in info.layers):
        console.print("details shortened to their first arguments: --json has them whole")
    for note in info.untoggled:
        console.print(f"not toggled: {note}", soft_wrap=True, markup=False)
    for line in instrumentation_notes(info):
        console.print(line, soft_wrap=True, markup=False)
    if not info.layers:
        console.print("no layers found: -m can add spin:N or a middleware by import path")
    else:
        console.print(
            "-m each: none, each layer alone, all (the app as written); names join with '+'; "
            "spin:N and module:Name add a middleware innermost"
        )
