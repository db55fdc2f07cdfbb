"""The `harness` click group: every command is registered here, each from its own module."""

from __future__ import annotations

import signal
import threading
from typing import Any, NoReturn

import click

from harness.cli.calibrate import calibrate_command
from harness.cli.compare import compare
from harness.cli.demo import demo
from harness.cli.diff import diff_command
from harness.cli.env import env_command
from harness.cli.lab import lab
from harness.cli.layers import layers
from harness.cli.merge import merge_command
from harness.cli.micro import micro_command
from harness.cli.profile import profile_command
from harness.cli.run import run
from harness.cli.serve import serve
from harness.cli.system import system
from harness.cli.targets import targets


def _terminate(signum: int, frame: Any) -> NoReturn:
    # SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` that stops a server runs.
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """Ctrl-C, SIGTERM and SIGHUP all unwind the harness, whatever it inherited (as uvicorn
    does). A background job of a non-interactive shell starts with SIGINT ignored, so without
    this `kill -INT` would do nothing and the server would run on. SIGHUP stays ignored when it
    was (`nohup harness serve ...` asks for exactly that)."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (an embedding program's business)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _terminate)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mwbench")
def main() -> None:
    """What does a Python web framework, and each middleware, cost per request?"""
    install_signal_handlers()


for command in (
    targets, layers, serve, run, diff_command, compare, merge_command, profile_command,
    micro_command, calibrate_command, demo, system, env_command, lab,
):  # fmt: skip
    main.add_command(command)

if __name__ == "__main__":
    main()
