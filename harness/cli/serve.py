"""`harness serve`: one target in the foreground, a thin layer over harness.serving.serve."""

from __future__ import annotations

import sys
from typing import Any

import click

from harness.cli.console import console
from harness.cli.params import LogOutput, Stack, TargetName, server_options
from harness.serving.servers import ServerError
from targets.table import UnknownTarget


@click.command()
@click.option("-t", "--target", required=True, type=TargetName(), help="The target to serve.")
@click.option(
    "-m",
    "--middlewares",
    "stack",
    type=Stack(),
    default="none",
    show_default=True,
    help="none, all, or middleware names joined by ',' or '+'.",
)
@server_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to bind; 0 picks a free one.",
)
@click.option(
    "--log-output",
    type=LogOutput(),
    default="stdout",
    show_default=True,
    help="Where middleware logs go: stdout, null, or file:PATH.",
)
def serve(**options: Any) -> None:
    """Run one target in the foreground until Ctrl-C."""
    from harness.serving.serve import serve as run_serve

    try:
        code = run_serve(**options, echo=lambda line: console.print(line, soft_wrap=True))
    except (ServerError, UnknownTarget, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)
