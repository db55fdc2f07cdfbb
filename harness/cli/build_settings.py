"""The settings objects, built once from a command's options: how to serve (ServeSettings) and
what load to send (LoadSettings), on the CPU sets that --pin plans for the two of them.

Each builder takes its options out of the command's `options`, so what is left is the command's
own; a command passes the objects whole to the function below it.
"""

from __future__ import annotations

from typing import Any

from harness.experiments.sweep.plan import PRESETS
from harness.load.request import Request
from harness.load.settings import LoadSettings
from harness.machine.cpus import CpuPlan, plan
from harness.serving.settings import ServeSettings

SERVE_KEYS = ("server", "workers", "worker_class", "threads", "log_output", "host", "port",
              "memory_ceiling", "python")  # fmt: skip
LOAD_KEYS = ("levels", "duration", "warmup", "timeout", "wrk", "rates", "rate_shares")


def cpu_plan(options: dict[str, Any]) -> CpuPlan:
    """--pin's CPU sets (server, load), planned once for both settings objects."""
    return plan(options.pop("pin", True))


def serve_settings(options: dict[str, Any], cpus: CpuPlan, **fixed: Any) -> ServeSettings:
    """How the command serves: its server options, on the server's CPUs."""
    found = {key: options.pop(key) for key in SERVE_KEYS if key in options}
    found = {key: value for key, value in found.items() if value is not None}
    return ServeSettings(cpus=cpus.server, **{**found, **fixed})


def load_settings(
    options: dict[str, Any],
    cpus: CpuPlan,
    *,
    request: Request | None,
    defaults: LoadSettings,
    preset: str | None = None,
) -> LoadSettings:
    """What load the command sends: a preset's levels, durations and timeout where one is
    chosen, the options given over them, on the load's CPUs."""
    base = PRESETS[preset].load(wrk=defaults.wrk) if preset else defaults
    found = {key: options.pop(key) for key in LOAD_KEYS if key in options}
    if preset:
        # A preset's durations and timeout stand, unless given; its levels, unless -c says.
        found = {k: v for k, v in found.items() if k in ("levels", "wrk") or _given(k)}
    found = {key: value for key, value in found.items() if value is not None}
    return base.replace(**found, request=request, cpus=cpus.load)


def _given(name: str) -> bool:
    import click
    from click.core import ParameterSource

    context = click.get_current_context(silent=True)
    return context is not None and context.get_parameter_source(name) not in (
        ParameterSource.DEFAULT,
        None,
    )
