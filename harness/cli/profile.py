"""`harness profile`: the click layer over harness.experiments.profile.run.profile()."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from harness.cli.axis_options import variant_option
from harness.cli.build_settings import cpu_plan, load_settings, serve_settings
from harness.cli.choose import (
    app_options,
    check_python,
    check_servers,
    choose_from,
    request_options,
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
    profile,
)
from harness.load.settings import LoadSettings
from harness.serving.settings import ServeSettings
from harness.serving.variants import parse_variants
from targets.table import TARGETS, Target


@click.command("profile")
@click.option(
    "-t",
    "--target",
    type=TargetName(),
    help=f"The target to profile: {', '.join(TARGETS)}.",
)
@app_options
@stack_option("all")
@request_options
@click.option(
    "-c",
    "--connections",
    type=click.IntRange(min=1),
    default=DEFAULT_CONNECTIONS,
    show_default=True,
    help="wrk connections.",
)
@server_option()
@python_option()
@variant_option
@worker_class_option(note="; gthread keeps connections alive")
@click.option(
    "--duration",
    default="10s",
    show_default=True,
    type=Duration(positive=True),
    help="How long py-spy samples (whole seconds), after the lead-in.",
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
@wrk_option
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
@click.option(
    "--log-output",
    type=LogOutput(),
    default=None,
    help="Where middleware logs go: stdout, null, or file:PATH  "
    "[default: file:DIR/TARGET-SET.server.log]",
)
@one_line_errors
def profile_command(connections: int, **options: Any) -> None:
    """Profile a target (or your app, --app) under wrk load: pprof-style top -cum, the share of
    every layer (each middleware, framework, app, server), and a flame graph."""
    chosen = choose_from(options, sets_key="stack", one_stack=True)
    server = options["server"]
    check_servers(chosen.targets, [server] if server else None, options["worker_class"])
    check_python(chosen.targets, options["python"], server, options["worker_class"])
    cpus = cpu_plan(options)
    serve = serve_settings(options, cpus)
    options["levels"] = (connections,)
    load = load_settings(options, cpus, request=chosen.request, defaults=PROFILE_LOAD)
    variants = parse_variants(options.pop("variants")) or (None,)
    out_dir = Path(options.pop("out_dir"))
    for variant in variants:
        if variant is not None:
            console.print(f"variant {variant.name}: {variant.describe()}", soft_wrap=True)
        _profile_one(
            chosen.targets[0], chosen.sets[0],
            serve.replace(env=variant.env) if variant else serve, load,
            out_dir / variant.name if variant and len(variants) > 1 else out_dir, options,
        )  # fmt: skip


def _profile_one(
    target: str | Target,
    stack: tuple[str, ...],
    serve: ServeSettings,
    load: LoadSettings,
    out_dir: Path,
    options: dict[str, Any],
) -> None:
    width = console.width if sys.stdout.isatty() else None
    try:
        result = profile(
            target=target, stack=stack, serve=serve, load=load, out_dir=out_dir,
            echo=lambda line: console.print(line, soft_wrap=True), **options,
        )  # fmt: skip
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
