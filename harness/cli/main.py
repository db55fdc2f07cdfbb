"""The `harness` click group: every command is registered here, each from its own module."""

from __future__ import annotations

import signal
from typing import Any, NoReturn

import click

from harness.cli.calibrate import calibrate_command
from harness.cli.compare import compare
from harness.cli.demo import demo
from harness.cli.diff import diff_command
from harness.cli.layers import layers
from harness.cli.micro import micro_command
from harness.cli.profile import profile_command
from harness.cli.run import run
from harness.cli.serve import serve
from harness.cli.system import system
from harness.cli.targets import targets


def _terminate(signum: int, frame: Any) -> NoReturn:
    # SIGTERM unwinds like Ctrl-C, so every `finally` that stops a server runs.
    raise KeyboardInterrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mwbench")
def main() -> None:
    """What does a Python web framework, and each middleware, cost per request?"""
    signal.signal(signal.SIGTERM, _terminate)


for command in (
    targets, layers, serve, run, diff_command, compare, profile_command, micro_command,
    calibrate_command, demo, system,
):  # fmt: skip
    main.add_command(command)

if __name__ == "__main__":
    main()
