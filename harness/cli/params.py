"""The click parameter types every command shares: one parser, one error message, per kind of value.

Each converts a command-line string into the value the keyword-only API takes, and turns a bad
value into a usage error (exit 2) that names the valid choices.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import click

from harness.load.wrk import ENV_WRK
from harness.load.wrk_output import parse_duration, parse_metric
from middleware import sink
from targets.server_table import SERVERS, Server
from targets.table import TARGETS, WSGI_WORKERS

if TYPE_CHECKING:
    pass


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class Duration(click.ParamType):
    """`3s`, `500ms`, `1m`; `positive=True` refuses 0."""

    name = "duration"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            seconds = parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self.positive and seconds <= 0:
            self.fail(f"must be more than 0: {value!r}", param, ctx)
        return seconds


class Number(click.FloatRange):
    """A float within click's range, and finite: NaN passes every range test and would make a
    limit that nothing exceeds."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"not a finite number: {value!r}", param, ctx)
        return number

    def _describe_range(self) -> str:
        # click describes an unbounded range as `x<=None` in the help
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


class ByteSize(click.ParamType):
    """`512MiB`, `2GiB`, `1.5G`, `100000` (bytes); more than 0."""

    name = "size"
    UNITS: ClassVar[dict[str, float]] = {
        "": 1, "k": 1e3, "kb": 1e3, "kib": 1024, "m": 1e6, "mb": 1e6, "mib": 1024**2, "g": 1e9,
        "gb": 1e9, "gib": 1024**3,
    }  # fmt: skip

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower().replace(" ", "")
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number) :]
        try:
            size = int(float(number) * self.UNITS[unit])
        except (ValueError, KeyError, OverflowError):  # OverflowError: inf
            self.fail(f"not a size: {value!r} (e.g. 512MiB, 2GiB, 100000)", param, ctx)
        if size <= 0:
            self.fail(f"must be more than 0: {value!r}", param, ctx)
        return size


class Levels(click.ParamType):
    """Concurrency levels: `8,32,64`, `"8 32 64"`, `1k`."""

    name = "levels"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        levels = []
        for part in re.split(r"[\s,]+", str(value).strip()):
            try:
                number = parse_metric(part)
            except ValueError:
                self.fail(f"not a concurrency level: {part!r}", param, ctx)
            if number < 1 or number != int(number):
                self.fail(f"a concurrency level is a positive integer: {part!r}", param, ctx)
            levels.append(int(number))
        return tuple(levels)


class CountOrAuto(click.ParamType):
    """A positive integer, or `auto` (None: the command chooses)."""

    name = "N|auto"

    def __init__(self, what: str) -> None:
        self.what = what

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | None:
        if value is None or value == "auto":
            return None
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(value)
            except ValueError:
                number = 0
        if number < 1:
            self.fail(f"{self.what} is a positive integer or auto: {value!r}", param, ctx)
        return number


class CpuList(click.ParamType):
    """`1`, `2-3`, `0,2`."""

    name = "cpus"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        cpus: list[int] = []
        try:
            for part in str(value).split(","):
                low, _, high = part.strip().partition("-")
                cpus.extend(range(int(low), int(high or low) + 1))
        except ValueError:
            self.fail(f"not a CPU list (e.g. 1 or 2-3 or 0,2): {value!r}", param, ctx)
        return tuple(dict.fromkeys(cpus))


class TargetName(click.ParamType):
    """One target of `choices` (default: the target table); `why_not` explains a known name that
    this command cannot take."""

    name = "target"

    def __init__(
        self, choices: Iterable[str] | None = None, why_not: dict[str, str] | None = None
    ) -> None:
        self.choices = tuple(choices) if choices is not None else tuple(TARGETS)
        self.why_not = why_not or {}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        name = str(value).strip()
        if name not in self.choices:
            note = f" ({self.why_not[name]})" if name in self.why_not else ""
            self.fail(
                f"unknown target {name!r}; valid: {', '.join(self.choices)}{note}", param, ctx
            )
        return name


def comma_items(value: Any) -> list[str]:
    """`a, b,,c` -> [a, b, c]: the items of a comma list as given on the command line."""
    return [item.strip() for item in str(value).split(",") if item.strip()]


def _comma_list(
    item: click.ParamType,
    value: Any,
    param: click.Parameter | None,
    ctx: click.Context | None,
    valid: Iterable[str],
) -> list[Any]:
    """`a,b,a` -> [a, b], each converted by `item`; none at all is an error naming the valid."""
    if isinstance(value, list):
        return value
    names = comma_items(value)
    if not names:
        item.fail(f"no {item.name} given; valid: {', '.join(valid)}", param, ctx)
    return list(dict.fromkeys(item.convert(n, param, ctx) for n in names))


class TargetList(TargetName):
    """A comma list of targets, duplicates dropped, order kept."""

    def convert(  # type: ignore[override]
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[str]:
        return _comma_list(TargetName(self.choices, self.why_not), value, param, ctx, self.choices)


class ServerName(click.ParamType):
    """A server of targets.server_table, resolved here, once: the option's value is the Server
    row itself. Whether it can serve the target is the command's check
    (harness.cli.choose.check_servers), once the target is known."""

    name = "server"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Server:
        if isinstance(value, Server):
            return value
        name = str(value).strip()
        if name not in SERVERS:
            self.fail(f"unknown server {name!r}; valid: {', '.join(SERVERS)}", param, ctx)
        return SERVERS[name]


class ServerList(ServerName):
    """A comma list of servers, duplicates dropped, order kept."""

    def convert(  # type: ignore[override]
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[Server]:
        return _comma_list(ServerName(), value, param, ctx, SERVERS)


class PythonList(click.ParamType):
    """`[NAME=]PATH[,...]`: Python interpreters (or virtualenv directories), each an environment;
    with `many` False, exactly one, as its path."""

    name = "python"

    def __init__(self, many: bool = True) -> None:
        self.many = many

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from harness.serving.pythons import Python, PythonError, find_python, parse_pythons

        if isinstance(value, list) or (not self.many and isinstance(value, Python)):
            return value
        if not self.many and "," in str(value):
            self.fail("one interpreter here, not a list", param, ctx)
        try:
            found = parse_pythons(str(value)) if self.many else [find_python(str(value))]
        except PythonError as exc:
            self.fail(exc.line, param, ctx)
        return found if self.many else found[0].path


def python_option(many: bool = False) -> Decorator:
    """--python: the Python environment the servers run in; with `many`, an axis of them."""
    what = (
        "Python interpreters (virtualenvs' bin/python, or their directories), comma-separated, "
        "NAME=PATH to name one: each set in each, against the first environment"
        if many
        else "The Python interpreter (a virtualenv's bin/python) the server runs in"
    )
    return click.option(
        "--python",
        "pythons" if many else "python",
        type=PythonList(many),
        default=None,
        help=f"{what}; it needs the framework and the server, not mwbench  [default: this one]",
    )


class LogOutput(click.ParamType):
    """Where the middleware logs go: `stdout`, `null` or `file:PATH`."""

    name = "sink"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return sink.check_log_output(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class EnvNames(click.ParamType):
    """A comma list of names of variables set in this environment (their values stay here)."""

    name = "NAME[,NAME...]"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = comma_items(value)
        for one in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", one):
                self.fail(f"not a variable's name: {one!r}", param, ctx)
            if one not in os.environ:
                self.fail(f"{one} is not set in this environment", param, ctx)
        if not names:
            self.fail("no variable named", param, ctx)
        return tuple(dict.fromkeys(names))


# Options that several commands share, declared once so they read and default the same everywhere.


def out_dir_option(default: Path, help: str = "Output directory.") -> Decorator:
    return click.option(
        "-d",
        "--dir",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help,
    )


pass_env_option: Decorator = click.option(
    "--pass-env",
    "passed_env",
    type=EnvNames(),
    default=None,
    help="Variables of this environment a server keeps under a count (--measure instructions "
    "keeps only PATH, HOME, the locale, TZ, TMPDIR, PYTHONPATH): what your app reads, e.g. "
    "DATABASE_URL. compare.json records their names and lengths, not their values.",
)

wrk_option: Decorator = click.option(
    "--wrk",
    envvar=ENV_WRK,
    show_envvar=True,
    default=None,
    help="The wrk binary  [default: wrk on PATH]",
)

tune_option: Decorator = click.option(
    "--tune/--no-tune",
    default=True,
    show_default=True,
    help="Where idle CPUs halt at once (VMs), tune them to poll for the run and restore them "
    "at exit (root only; as `harness system tune|reset`).",
)

pin_option: Decorator = click.option(
    "--pin/--no-pin", default=True, show_default=True, help="Server and wrk on disjoint CPU sets."
)


def server_options(wsgi_worker: str = "sync") -> Decorator:
    """--workers, --worker-class, --threads: how gunicorn runs the target. `wsgi_worker` is
    the worker the command really uses for a WSGI target when neither --worker-class nor
    --server says (compare's is gthread), for the help to say."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(
            (
                click.option(
                    "--workers",
                    "-w",
                    type=click.IntRange(min=1),
                    default=1,
                    show_default=True,
                    help="gunicorn worker processes.",
                ),
                worker_class_option(wsgi_worker),
                click.option(
                    "--threads",
                    type=click.IntRange(min=1),
                    default=None,
                    help="Threads per gthread worker  [default: 8]",
                ),
            )
        ):
            command = option(command)
        return command

    return apply


def worker_class_option(wsgi_worker: str = "sync", note: str = "") -> Decorator:
    return click.option(
        "--worker-class",
        type=click.Choice(WSGI_WORKERS),
        default=None,
        help=f"gunicorn worker for WSGI targets, the same as --server gunicorn-K{note}  "
        f"[default: {wsgi_worker}]",
    )


def server_option(many: bool = False, wsgi_worker: str | None = None) -> Decorator:
    """--server: which server runs the target (targets.server_table); with `many`, a comma list
    that makes the server an axis. `wsgi_worker`: a WSGI target runs on gunicorn with that
    worker by default, not on its own default server (compare: gthread)."""
    what = (
        "The server, or a comma list of servers to compare (each set on each, against the raw "
        "app on the same server)"
        if many
        else "The server"
    )
    default = "the target's own, see `harness targets`"
    if wsgi_worker is not None:
        default += f"; gunicorn-{wsgi_worker} for WSGI"
    return click.option(
        "--server",
        "servers" if many else "server",
        type=ServerList() if many else ServerName(),
        default=None,
        help=f"{what}: {', '.join(SERVERS)}, as the target's interface allows  "
        f"[default: {default}]",
    )


def sets_option(note: str = "") -> Decorator:
    """-m/--middlewares for the commands that measure several sets; resolved by the command
    (harness.cli.choose) against the target's middlewares or, with --app, the app's own."""
    return click.option(
        "-m",
        "--middlewares",
        "sets",
        default="none,all",
        show_default=True,
        help="Comma-separated middleware sets, each none, all, a name, or names joined by '+'; "
        "'each' is none, every single middleware, then all; spin:N, work:N and module:Name (a "
        "middleware by import path) go innermost." + note,
    )


def stack_option(default: str) -> Decorator:
    """-m/--middlewares for the commands that run one stack."""
    return click.option(
        "-m",
        "--middlewares",
        "stack",
        default=default,
        show_default=True,
        help="none, all, or middleware names joined by ',' or '+' (with --app, the app's own); "
        "spin:N, work:N and module:Name (a middleware by import path) go innermost.",
    )


duration_option: Decorator = click.option(
    "--duration",
    default="3s",
    show_default=True,
    type=Duration(positive=True),
    help="Measured time per level (wrk takes whole seconds).",
)

warmup_option: Decorator = click.option(
    "--warmup",
    default="1s",
    show_default=True,
    type=Duration(),
    help="Discarded warm-up before each sweep; 0 skips it.",
)


def repeat_option(default: int, help: str, *, least: int = 2) -> Decorator:
    """--repeat/-r: the rounds (or batches) a command interleaves, at least `least`."""
    return click.option(
        "--repeat",
        "-r",
        type=click.IntRange(min=least),
        default=default,
        show_default=True,
        help=help,
    )


def levels_option(default: str | None, help: str) -> Decorator:
    """-c/--levels: the concurrency levels of a command's sweeps (Levels); `default` None: the
    command's own, said in `help`."""
    return click.option(
        "-c",
        "--levels",
        type=Levels(),
        default=default,
        show_default=default is not None,
        help=help,
    )


def charts_option(help: str) -> Decorator:
    """--charts/--no-charts: whether a command draws its PNG charts (`help`: which)."""
    return click.option("--charts/--no-charts", default=True, show_default=True, help=help)
