"""Options that travel as one value, and the settings objects built from them.

A command declares a group of options once (`option_group`) and receives one frozen object of
their values instead of each: `ServeOptions` (how to serve), `LoadOptions` (what load to send)
and `WhatOptions` (what to measure: -t or --app, -m, the request). Each turns into what the
experiment takes, once: ServeSettings and LoadSettings on the CPU sets --pin plans for both,
and the chosen targets, sets and request.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from harness.cli.params import Decorator
from harness.experiments.sweep.plan import PRESETS
from harness.load.request import Request
from harness.load.settings import LoadSettings
from harness.machine.cpus import CpuPlan, plan
from harness.serving.pythons import Python
from harness.serving.settings import ServeSettings
from targets.server_table import Server


def option_group(into: str, build: Callable[..., Any], *options: Decorator) -> Decorator:
    """`options`, declared as any click option, handed to the command as one argument:
    `into=build(**their values)`."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        declared: list[click.Parameter] = _declared(options)
        names = [p.name for p in declared if p.expose_value and p.name]

        @functools.wraps(command)
        def grouped(**values: Any) -> Any:
            group = build(**{name: values.pop(name) for name in names})
            return command(**values, **{into: group})

        # Below the command's own: click shows a decorator's options where it stands.
        grouped.__click_params__ = [*getattr(command, "__click_params__", []), *declared]  # type: ignore[attr-defined]
        return grouped

    return decorate


def _declared(options: Sequence[Decorator]) -> list[click.Parameter]:
    def holder() -> None:
        return None

    for option in reversed(options):
        option(holder)
    return list(getattr(holder, "__click_params__", []))


def plan_cpus(pin: bool) -> CpuPlan:
    """--pin's CPU sets (server, load), planned once for both settings objects."""
    return plan(pin)


def given(name: str) -> bool:
    """Whether option `name` was given on the command line (or by the environment), rather
    than left at its default."""
    context = click.get_current_context(silent=True)
    return context is not None and context.get_parameter_source(name) not in (
        ParameterSource.DEFAULT,
        None,
    )


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """How to serve, as given; `settings` puts it on the server's CPUs."""

    server: Server | None = None  # --server, resolved by its option
    servers: tuple[Server, ...] | None = None  # --server as an axis
    workers: int | None = None
    worker_class: str | None = None
    threads: int | None = None
    log_output: str | None = None
    host: str | None = None
    port: int | None = None
    memory_ceiling: int | None = None
    python: str | None = None
    pythons: tuple[Python, ...] | None = None  # --python as an axis
    passed_env: tuple[str, ...] | None = None

    def settings(self, cpus: CpuPlan) -> ServeSettings:
        # The axes (servers, pythons) are the compare's; the rest is how each server runs.
        chosen = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("servers", "pythons")
        }
        return ServeSettings(cpus=cpus.server, **{k: v for k, v in chosen.items() if v is not None})

    @property
    def first_python(self) -> str | None:
        """The interpreter an app is described in: --python's, or the axis's first."""
        return self.python or next((p.path for p in self.pythons or ()), None)


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """What load to send, as given; `settings` lays it over the command's defaults."""

    levels: tuple[int, ...] | None = None
    duration: float | None = None
    warmup: float | None = None
    timeout: float | None = None
    wrk: str | None = None
    preset: str | None = None
    rates: tuple[float, ...] | None = None
    rate_shares: tuple[float, ...] | None = None
    requests: int | None = None  # a counted window's size (--measure instructions)

    def replace(self, **changes: Any) -> LoadOptions:
        return dataclasses.replace(self, **changes)

    def settings(
        self, cpus: CpuPlan, *, request: Request | None, defaults: LoadSettings
    ) -> LoadSettings:
        """A preset's levels, durations and timeout where one is chosen, the options given
        over them, on the load's CPUs."""
        base = PRESETS[self.preset].load(wrk=defaults.wrk) if self.preset else defaults
        found = {
            key: getattr(self, key)
            for key in (
                "levels",
                "duration",
                "warmup",
                "timeout",
                "wrk",
                "rates",
                "rate_shares",
                "requests",
            )
        }
        if self.preset:
            # A preset's durations and timeout stand, unless given; its levels, unless -c says.
            found = {k: v for k, v in found.items() if k in ("levels", "wrk") or given(k)}
        found = {key: value for key, value in found.items() if value is not None}
        return base.replace(**found, request=request, cpus=cpus.load)


@dataclass(frozen=True, kw_only=True)
class WhatOptions:
    """What to measure, as given: a target of the table or your app, the sets, the request."""

    target: str | None = None
    targets: list[str] | None = None
    app: str | None = None
    factory: bool = False
    app_dir: str = "."
    sets: str | None = None
    stack: str | None = None
    path: str | None = None
    method: str = "GET"
    headers: tuple[str, ...] = ()
    body: str | None = None
    body_file: Path | None = None
    expect_status: int | None = None

    @property
    def named_targets(self) -> list[str] | None:
        return self.targets or ([self.target] if self.target else None)

    @property
    def request_options(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "method": self.method,
            "headers": self.headers,
            "body": self.body,
            "body_file": self.body_file,
            "expect_status": self.expect_status,
        }
