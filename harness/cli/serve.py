"""`harness serve`: one target in the foreground, a thin layer over harness.serving.serve."""

from __future__ import annotations

import sys

import click

from harness.cli.build_settings import ServeOptions, WhatOptions, option_group
from harness.cli.choose import app_options, check_python, check_servers, choose_from
from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.cli.params import (
    LogOutput,
    TargetName,
    python_option,
    server_option,
    server_options,
    stack_option,
)
from harness.machine.cpus import CpuPlan
from targets.routes import HEALTHZ_PATH


@click.command()
@option_group(
    "what",
    WhatOptions,
    click.option("-t", "--target", type=TargetName(), help="The target to serve."),
    app_options,
    stack_option("none"),
    click.option(
        "--path",
        default=None,
        help="With --app: the path that must answer before it is up, and that is printed  "
        "[default: /]",
    ),
)
@option_group(
    "serve",
    ServeOptions,
    server_option(),
    python_option(),
    server_options(),
    click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind."),
    click.option(
        "--port",
        "-p",
        type=click.IntRange(0, 65535),
        default=8000,
        show_default=True,
        help="Port to bind; 0 picks a free one.",
    ),
    click.option(
        "--log-output",
        type=LogOutput(),
        default="stdout",
        show_default=True,
        help="Where middleware logs go: stdout, null, or file:PATH.",
    ),
)
@one_line_errors
def serve(*, what: WhatOptions, serve: ServeOptions) -> None:
    """Run one target, or your app (--app), in the foreground until Ctrl-C.

    Examples: harness serve --app main.py:app -m none --port 8000;
    harness serve -t flask --server granian
    """
    from harness.serving.serve import serve as run_serve

    chosen = choose_from(what, python=serve.python, one_stack=True)
    served = chosen.targets[0]
    check_servers([served], [serve.server] if serve.server else None, serve.worker_class)
    check_python([served], serve.python, serve.server, serve.worker_class)
    path = chosen.request.path if chosen.request is not None else HEALTHZ_PATH
    settings = serve.settings(CpuPlan(None, None))  # in the foreground: not pinned
    code = run_serve(
        target=served,
        stack=chosen.sets[0],
        settings=settings,
        path=path,
        echo=lambda line: console.print(line, soft_wrap=True),
    )
    sys.exit(code)
