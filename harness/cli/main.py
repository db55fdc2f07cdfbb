"""The `harness` click group: every command is registered here, each from its own module,
imported when it runs."""

from __future__ import annotations

import importlib
import signal
import threading
from typing import Any, NoReturn

import click

# Each command's module, imported when that command runs: `harness run` loads the sweep and
# nothing of compare's measures, and `harness --help` loads every command's options only.
COMMANDS = {
    "targets": "harness.cli.targets:targets",
    "layers": "harness.cli.layers:layers",
    "serve": "harness.cli.serve:serve",
    "run": "harness.cli.run:run",
    "diff": "harness.cli.diff:diff_command",
    "compare": "harness.cli.compare:compare",
    "merge": "harness.cli.merge:merge_command",
    "profile": "harness.cli.profile:profile_command",
    "micro": "harness.cli.micro:micro_command",
    "calibrate": "harness.cli.calibrate:calibrate_command",
    "demo": "harness.cli.demo:demo",
    "system": "harness.cli.system:system",
    "env": "harness.cli.env:env_command",
    "lab": "harness.cli.lab:lab",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name when they are asked for (click's own
    recipe for large command lines)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, _, name = where.partition(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command), where
        return command


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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mwbench")
def main() -> None:
    """What does a Python web framework, and each middleware, cost per request?"""
    install_signal_handlers()


if __name__ == "__main__":
    main()
