"""The `harness` command line: a thin layer over the keyword-only functions that do the work."""

from __future__ import annotations

import signal
import sys
from typing import Any, NoReturn

import click
from rich.table import Table

from harness.cli.console import console
from harness.cli.params import LogOutput, Stack, TargetName, server_options
from harness.serving.servers import ServerError
from middleware.stack import ORDER
from targets.table import TARGETS, UnknownTarget


def _terminate(signum: int, frame: Any) -> NoReturn:
    # SIGTERM unwinds like Ctrl-C, so every `finally` that stops a server runs.
    raise KeyboardInterrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mwbench")
def main() -> None:
    """What does a Python web framework, and each middleware, cost per request?"""
    signal.signal(signal.SIGTERM, _terminate)


@main.command()
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


@main.command()
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


# Commands that live in their own modules register below, one import and one add_command each.
# (Imports are deferred into the modules' command bodies where they are heavy, e.g. matplotlib.)
# -- command registry --
from harness.cli.compare import compare  # noqa: E402

main.add_command(compare)
from harness.cli.demo import demo  # noqa: E402

main.add_command(demo)
from harness.cli.run import diff_command, run  # noqa: E402

main.add_command(run)
main.add_command(diff_command)
from harness.cli.profile import profile_command  # noqa: E402

main.add_command(profile_command)
from harness.cli.micro import micro_command  # noqa: E402

main.add_command(micro_command)
from harness.cli.calibrate import calibrate_command  # noqa: E402

main.add_command(calibrate_command)
from harness.cli.system import system  # noqa: E402

main.add_command(system)

if __name__ == "__main__":
    main()
