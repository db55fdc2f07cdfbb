"""`harness run`: the click layer over harness.experiments.sweep.run.sweep() (wrktest.sh)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli.build_settings import LoadOptions, given
from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.cli.params import (
    CountOrAuto,
    CpuList,
    Duration,
    Levels,
    charts_option,
    out_dir_option,
    wrk_option,
)
from harness.cli.rules import open_model, rate_option, slo_options
from harness.errors import UsageError
from harness.experiments.sweep.plan import (
    DEFAULT_NAME,
    DEFAULT_OUT_DIR,
    DEFAULT_PRESET,
    PRESETS,
    SweepRequest,
)

if TYPE_CHECKING:
    from harness.load.results import SweepResult
    from harness.load.settings import LoadSettings
    from harness.measures.slo import Slo


OPEN_DURATION_S = 5.0  # per rate, with --rate


def _open_run(url: str, load: LoadSettings, slo: Slo | None, out_dir: Path, name: str) -> None:
    from harness.experiments.open_run.render import notes, rich_table, write_open_run
    from harness.experiments.open_run.run import open_run

    result = open_run(url=url, load=load, slo=slo, out_dir=out_dir, name=name, echo=console.print)
    path = write_open_run(result)
    console.print(rich_table(result))
    for line in notes(result):
        console.print(f"[yellow]note:[/] {line}", soft_wrap=True)
    console.print(f"data: {path}", soft_wrap=True)
    if result.interrupted:
        sys.exit(130)


# The closed model's options (wrk's): with --rate k6 sends a fixed arrival rate instead.
CLOSED_ONLY = ("levels", "preset", "timeout", "threads", "warmup", "resume")


def _closed_only_not_given() -> None:
    context = click.get_current_context()
    for option in context.command.params:
        if option.name in CLOSED_ONLY and given(option.name):
            flag = max(option.opts, key=len)
            raise UsageError(
                f"{flag} is wrk's (the closed model): with --rate, --slo or --capacity k6 "
                "sends a fixed arrival rate; give one or the other"
            )


def open_announcement(host: str, load: LoadSettings, slo: Slo | None) -> str:
    """What `--allow-remote` is about to send in the open model, said before it is sent."""
    from harness.experiments.compare.capacity import MAX_PROBES
    from harness.experiments.open_run.run import PEAK_LOAD

    if load.rates:
        rates = ", ".join(f"{r:,.0f}" for r in load.rates) + " req/s"
    else:
        rates = ", ".join(f"{100 * s:g}%" for s in load.rate_shares) + " of its peak"
    said = [f"sending open-model load to {host} (k6, {load.duration:g}s a rate):"]
    if load.rate_shares or slo is not None:
        seconds = PEAK_LOAD.warmup + PEAK_LOAD.duration
        said.append(
            f"a closed-model peak sweep (wrk, {PEAK_LOAD.levels[0]} connections, {seconds:g}s),"
        )
    if load.rates or load.rate_shares:
        said.append(rates + ",")
    if slo is not None:
        said.append(f"a capacity search within {slo.describe()} (at most {MAX_PROBES} rates),")
    return " ".join(said).rstrip(",")


@click.command()
@click.argument("url")
@click.option(
    "-n",
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    help="Job name: files are NAME.dat, NAME.json, NAME_*.png.",
)
@out_dir_option(DEFAULT_OUT_DIR)
@click.option(
    "-c",
    "--connections",
    "levels",
    type=Levels(),
    default=None,
    help="Concurrency levels, e.g. '8,32,64' or '200 500 1k'.  [default: "
    + " ".join(map(str, DEFAULT_PRESET.levels))
    + "]",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="iam: the source document's wrktest.sh (10 levels, 300s each, -T30s, "
    "3×CPUs threads); quick: 4 levels of 2s.",
)
@click.option(
    "--duration",
    type=Duration(),
    default=None,
    help="wrk -d per level (wrk takes whole seconds; 500ms, 5s, 1m)."
    f"  [default: {DEFAULT_PRESET.duration:g}s]",
)
@click.option(
    "--timeout",
    type=Duration(),
    default=None,
    help=f"wrk --timeout per request.  [default: {DEFAULT_PRESET.timeout:g}s]",
)
@click.option(
    "--threads",
    type=CountOrAuto("threads"),
    default=None,
    help="wrk threads, or auto: one per CPU wrk may use; never above the connections."
    "  [default: auto]",
)
@click.option(
    "--warmup",
    type=Duration(),
    default=None,
    help="Warm-up run before the levels, discarded; 0 skips it."
    f"  [default: {DEFAULT_PRESET.warmup:g}s]",
)
@wrk_option
@click.option(
    "--cpus",
    type=CpuList(),
    default=None,
    help="Pin wrk to these CPUs (taskset), e.g. 1 or 2-3.  [default: not pinned]",
)
@click.option(
    "--resume", is_flag=True, help="Keep the levels NAME.json already has and run the rest."
)
@charts_option("Draw the PNG charts at the end.")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Send load to a host that is not loopback (a server of yours on another machine or "
    "network namespace, e.g. `harness lab up`'s); the first line says what will be sent.",
)
@rate_option(of="the URL's", implied="")
@slo_options(whose="the URL's", implied="")
@one_line_errors
def run(
    url: str,
    name: str,
    out_dir: Path,
    levels: tuple[int, ...] | None,
    preset: str | None,
    duration: float | None,
    timeout: float | None,
    threads: int | None,
    warmup: float | None,
    wrk: str | None,
    cpus: tuple[int, ...] | None,
    resume: bool,
    charts: bool,
    allow_remote: bool,
    rates: tuple[tuple[float, ...], tuple[float, ...]] | None,
    slo: Slo | None,
    capacity: bool,
) -> None:
    """Sweep concurrency levels with wrk against URL (the source document's wrktest.sh); with
    --rate or --slo, send fixed arrival rates with k6 instead (the open model)."""
    if rates is not None or slo is not None or capacity:
        from harness.experiments.sweep.plan import check_out_dir, check_url

        host = check_url(url, allow_remote=allow_remote)
        _closed_only_not_given()
        check_out_dir(out_dir)
        _, slo, rated = open_model(rates, slo, capacity, (), LoadOptions())
        open_load = DEFAULT_PRESET.load(duration=duration or OPEN_DURATION_S, wrk=wrk, cpus=cpus)
        if rated.rates is not None and rated.rate_shares is not None:
            open_load = open_load.replace(rates=rated.rates, rate_shares=rated.rate_shares)
        if allow_remote:
            console.print(open_announcement(host, open_load, slo), soft_wrap=True, markup=False)
        _open_run(url, open_load, slo, out_dir, name)
        return
    load = (PRESETS[preset] if preset else DEFAULT_PRESET).load(
        levels=levels,
        duration=duration,
        timeout=timeout,
        threads=threads,
        warmup=warmup,
        wrk=wrk,
        cpus=cpus,
    )
    started = time.monotonic()
    request = SweepRequest(
        url=url,
        name=name,
        out_dir=out_dir,
        load=load,
        resume=resume,
        meta={"command": "run", "preset": preset, "allow_remote": allow_remote},
        allow_remote=allow_remote,
    )
    result = _sweep(request)
    if charts:
        _draw(result)
    _show_sweep(result, started)


def _sweep(request: SweepRequest) -> SweepResult:
    from harness.experiments.sweep.progress import RichReporter
    from harness.experiments.sweep.run import sweep

    if request.allow_remote:
        _announce_remote_load(request)
    try:
        return sweep(request, progress=RichReporter(console))
    except KeyboardInterrupt:
        kept = Path(request.out_dir) / request.name
        console.print(
            f"\n[yellow]interrupted[/]: the finished levels are in {kept}.dat and "
            f"{kept}.json; continue with --resume"
        )
        sys.exit(130)


def _announce_remote_load(request: SweepRequest) -> None:
    """Say what is about to be sent to a host that is not loopback, before it is sent."""
    from harness.experiments.sweep.plan import check_url, remote_announcement

    host = check_url(request.url, allow_remote=True)
    load = request.load
    console.print(
        remote_announcement(
            host=host, levels=load.levels, duration=load.duration, warmup=load.warmup
        ),
        soft_wrap=True,
    )


def _draw(result: SweepResult) -> None:
    from harness.experiments.sweep.run import kept_levels
    from harness.render.charts import plot_sweep

    try:
        plot_sweep(result)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the charts in {result.out_dir}: {exc.strerror or exc}; the "
            f"{kept_levels(result)}"
        ) from None


def _show_sweep(result: SweepResult, started: float) -> None:
    from harness.experiments.sweep.render import summary_table, sweep_notes

    console.print(summary_table(result, console.width))
    for note in sweep_notes(result):
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    console.print(f"data: {result.dat_path}, {result.json_path}", soft_wrap=True)
    for chart in result.charts:
        console.print(f"chart: {chart}", soft_wrap=True)
    console.print(f"took {time.monotonic() - started:.1f}s")
    if result.all_failed:
        console.print("[red]error:[/] every level failed; nothing was measured")
        sys.exit(1)
    missed = [level for level in result.levels if not level.is_ok]
    if missed:
        # What was measured is written; a sweep that did not measure what it was asked for still
        # says so by its exit, for a script or a CI job that runs it.
        why = "; ".join(f"c={level.concurrency}: {level.reason}" for level in missed)
        console.print(
            f"[red]error:[/] {len(missed)} of {len(result.levels)} levels were not measured "
            f"({why}); the {len(result.ok_levels)} measured are kept",
            soft_wrap=True,
        )
        sys.exit(1)
