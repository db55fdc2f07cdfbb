"""`harness profile`: the click layer over harness.experiments.profile.run.profile()."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from harness.cli.axis_options import variant_option
from harness.cli.build_settings import (
    LoadOptions,
    ServeOptions,
    WhatOptions,
    option_group,
    plan_cpus,
)
from harness.cli.choose import (
    check_python,
    check_servers,
    choose_from,
    what_options,
)
from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.cli.params import (
    Duration,
    LogOutput,
    TargetName,
    out_dir_option,
    pin_option,
    python_option,
    server_option,
    stack_option,
    worker_class_option,
    wrk_option,
)
from harness.experiments.profile.pyspy import ENV_PY_SPY
from harness.experiments.profile.render import write_profile
from harness.experiments.profile.run import (
    DEFAULT_CONNECTIONS,
    DEFAULT_LEAD_IN,
    DEFAULT_OUT_DIR,
    DEFAULT_RATE,
    PROFILE_LOAD,
    ProfileRequest,
    profile,
)
from harness.serving.variants import parse_variants
from targets.table import TARGETS


@click.command("profile")
@what_options(
    targets=TargetName(),
    help=f"The target to profile: {', '.join(TARGETS)}.",
    sets=stack_option("all"),
)
@click.option(
    "-c",
    "--connections",
    type=click.IntRange(min=1),
    default=DEFAULT_CONNECTIONS,
    show_default=True,
    help="wrk connections.",
)
@option_group(
    "serve",
    ServeOptions,
    server_option(),
    python_option(),
    worker_class_option(note="; gthread keeps connections alive"),
    click.option(
        "--log-output",
        type=LogOutput(),
        default=None,
        help="Where middleware logs go: stdout, null, or file:PATH  "
        "[default: file:DIR/TARGET-SET.server.log]",
    ),
)
@variant_option
@option_group(
    "load",
    LoadOptions,
    click.option(
        "--duration",
        default="10s",
        show_default=True,
        type=Duration(positive=True),
        help="How long py-spy samples (whole seconds), after the lead-in.",
    ),
    wrk_option,
)
@click.option(
    "--lead-in",
    default=f"{DEFAULT_LEAD_IN:g}s",
    show_default=True,
    type=Duration(positive=True),
    help="Load before sampling starts, so the samples see a steady state.",
)
@click.option(
    "--rate",
    type=click.IntRange(min=1, max=10000),
    default=DEFAULT_RATE,
    show_default=True,
    help="Samples per second.",
)
@out_dir_option(DEFAULT_OUT_DIR)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Rows of the top -cum table.",
)
@click.option(
    "--py-spy",
    "py_spy",
    envvar=ENV_PY_SPY,
    default=None,
    help=f"The py-spy binary  [default: ${ENV_PY_SPY}, else the venv's, else PATH]",
)
@pin_option
@click.option(
    "--nonblocking",
    is_flag=True,
    default=False,
    show_default=True,
    help="Sample without pausing the worker: less slowdown, but py-spy then drops "
    "or tears some stacks.",
)
@click.option(
    "--gil/--no-gil",
    default=None,
    help="Sample only the thread holding the GIL (misses time in syscalls that release it)  "
    "[default: on for gthread and granian, else off]",
)
@one_line_errors
def profile_command(
    *,
    what: WhatOptions,
    connections: int,
    serve: ServeOptions,
    variants: tuple[str, ...],
    load: LoadOptions,
    lead_in: float,
    rate: int,
    out_dir: str,
    top: int,
    py_spy: str | None,
    pin: bool,
    nonblocking: bool,
    gil: bool | None,
) -> None:
    """Profile a target (or your app, --app) under wrk load: pprof-style top -cum, the share of
    every layer (each middleware, framework, app, server), and a flame graph."""
    chosen = choose_from(what, python=serve.python, one_stack=True)
    check_servers(chosen.targets, [serve.server] if serve.server else None, serve.worker_class)
    check_python(chosen.targets, serve.python, serve.server, serve.worker_class)
    cpus = plan_cpus(pin)
    serving = serve.settings(cpus)
    loading = load.replace(levels=(connections,)).settings(
        cpus, request=chosen.request, defaults=PROFILE_LOAD
    )
    request = ProfileRequest(
        target=chosen.targets[0],
        stack=chosen.sets[0],
        serve=serving,
        load=loading,
        rate=rate,
        out_dir=Path(out_dir),
        top=top,
        py_spy=py_spy,
        nonblocking=nonblocking,
        gil=gil,
        lead_in=lead_in,
    )
    each = parse_variants(variants) or (None,)
    for variant in each:
        if variant is None:
            _profile_one(request)
            continue
        console.print(f"variant {variant.name}: {variant.describe()}", soft_wrap=True)
        # Several variants: each profile in a directory of its own.
        out = Path(out_dir) / variant.name if len(each) > 1 else Path(out_dir)
        _profile_one(
            dataclasses.replace(request, serve=serving.replace(env=variant.env), out_dir=out)
        )


def _profile_one(request: ProfileRequest) -> None:
    width = console.width if sys.stdout.isatty() else None
    try:
        result = profile(request, echo=lambda line: console.print(line, soft_wrap=True))
    except KeyboardInterrupt:
        console.print("interrupted: server, wrk and py-spy stopped", soft_wrap=True)
        sys.exit(130)
    write_profile(result)
    under, rec = result.wrk, result.recording
    console.print(
        f"wrk: {under.qps:,.0f} req/s over {under.duration_s:g}s, lead-in and sampling "
        f"(py-spy's pauses slow the worker); py-spy: {result.samples} non-idle samples"
        + (f", {rec.errors} failed" if rec.errors else ""),
        soft_wrap=True,
    )
    console.print()
    console.print(result.report(width=width), soft_wrap=True, markup=False)
    console.print()
    for label, file in result.files.items():
        console.print(f"{label}: {file}", soft_wrap=True, markup=False)
