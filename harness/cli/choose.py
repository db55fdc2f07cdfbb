"""What a command measures: a target of the table (`-t`) or your own app (`--app`), the middleware
sets (`-m`, resolved against the target's middlewares or the app's own layers), and the request
to time (`--path`, `--method`, `-H`, `--body`, `--body-file`, `--expect-status`).

Shared by serve, compare, profile, micro and calibrate, so they read and fail alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from harness.cli.build_settings import WhatOptions, option_group
from harness.cli.params import Decorator
from harness.errors import HarnessError
from harness.errors import UsageError as HarnessUsageError
from harness.load.request import METHODS, Request, RequestError, parse_header
from harness.serving.apps import AppInfo, describe_app, target_for
from harness.serving.userapp.spec import AppLoadError, AppSpec
from middleware.stack import (
    ORDER,
    UnknownMiddleware,
    is_import_path,
    is_known,
    parse_sets,
    parse_stack,
)
from targets.routes import HEALTHZ_PATH
from targets.server_table import (
    Server,
    ServerChoiceError,
    check_serves,
    implied_by_worker_class,
)
from targets.table import Target, get_target

SETS_HINT = "'-m' / '--middlewares'"


def all_of(*options: Decorator) -> Decorator:
    """One decorator for `options`, listed as they would be stacked (the first outermost)."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def _django_settings(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # The environment is what Django reads, in the child that describes the app and in every
    # server process (both inherit this one's), so it is set here rather than carried along.
    if value is None:
        return
    if not all(part.isidentifier() for part in value.split(".")):
        raise click.BadParameter(f"{value!r} is not a module path (mysite.settings)")
    os.environ["DJANGO_SETTINGS_MODULE"] = value


# --app, --factory, --app-dir, --django-settings: your own app instead of -t.
app_options = all_of(
    click.option(
        "--app",
        default=None,
        metavar="SPEC",
        help="Your app instead of -t: package.module:attr or path/to/file.py:attr "
        "(WSGI, ASGI or aiohttp, detected); where the command takes -m, it toggles "
        "the app's own middlewares.",
    ),
    click.option(
        "--factory", is_flag=True, help="--app names a factory: call it with no arguments."
    ),
    click.option(
        "--app-dir",
        default=".",
        show_default=True,
        type=click.Path(file_okay=False, exists=True),
        help="Put first on sys.path when importing --app (and -m import paths).",
    ),
    click.option(
        "--django-settings",
        default=None,
        metavar="MODULE",
        expose_value=False,
        callback=_django_settings,
        help="A Django project's settings module (sets DJANGO_SETTINGS_MODULE for the "
        "description and every server).",
    ),
)


# The request to time, sent as is by wrk (a Lua script when it is not a plain GET).
request_options = all_of(
    click.option(
        "--path",
        default=None,
        help=f"Path to request  [default: / with --app, {HEALTHZ_PATH} for targets]",
    ),
    click.option(
        "--method",
        type=click.Choice(METHODS, case_sensitive=False),
        default="GET",
        show_default=True,
        help="HTTP method.",
    ),
    click.option(
        "-H",
        "--header",
        "headers",
        multiple=True,
        metavar="'NAME: VALUE'",
        help="A request header; repeatable.",
    ),
    click.option("--body", default=None, help="Request body (text)."),
    click.option(
        "--body-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="Request body, from a file.",
    ),
    click.option(
        "--expect-status",
        type=click.IntRange(100, 599),
        default=None,
        help="The status every answer must have  [default: any 2xx]",
    ),
)


@dataclass(frozen=True)
class Chosen:
    """What to measure: targets (names, or one app as a Target), the sets, and the request."""

    targets: list[str | Target]
    sets: list[tuple[str, ...]]
    request: Request | None  # None: the targets' GET /healthz
    app: AppInfo | None = None


def build_request(
    *,
    path: str | None,
    method: str,
    headers: tuple[str, ...],
    body: str | None,
    body_file: Path | None,
    expect_status: int | None,
    for_app: bool,
) -> Request | None:
    """The request the options describe; None when they describe the default GET /healthz of a
    target here (which is checked more strictly: its exact body and content type)."""
    if body is not None and body_file is not None:
        raise click.UsageError("give --body or --body-file, not both")
    data = body_file.read_bytes() if body_file is not None else (body or "").encode()
    try:
        request = Request(
            method=method.upper(),
            path=path or ("/" if for_app else HEALTHZ_PATH),
            headers=tuple(parse_header(h) for h in headers),
            body=data,
            expect_status=expect_status,
        )
    except RequestError as exc:
        raise click.UsageError(str(exc)) from None
    return None if request == Request() and not for_app else request


def load_app(
    app: str,
    factory: bool,
    app_dir: str,
    extras: tuple[str, ...] = (),
    python: str | None = None,
) -> AppInfo:
    """Describe `--app` (in a child interpreter: `python`'s, else ours); AppLoadError (a usage
    error, one line) when it cannot be served."""
    return describe_app(AppSpec(app, factory, app_dir), extras, python=python)


def resolve_sets(text: str, names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """-m against the middlewares there are: ours on a target, the app's own with --app."""
    try:
        return parse_sets(text, names)
    except UnknownMiddleware as exc:
        raise click.BadParameter(str(exc), param_hint=SETS_HINT) from None


def resolve_stack(text: str, names: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return parse_stack(text, names)
    except UnknownMiddleware as exc:
        raise click.BadParameter(str(exc), param_hint=SETS_HINT) from None


def extras_of(text: str) -> tuple[str, ...]:
    """The middlewares of -m given by import path or spin: checked against the app up front."""
    parts = (p.strip() for p in text.replace("+", ",").split(","))
    return tuple(dict.fromkeys(p for p in parts if is_import_path(p) or is_known(p)))


def describe_app_choice(info: AppInfo) -> None:
    """What --app found, before it is measured: the interface, the layers and what stays."""
    from harness.cli.console import console

    names = ", ".join(info.layer_names) or "(none)"
    console.print(
        f"{info.spec.target}: {info.framework}, {info.interface.upper()}; layers, outermost "
        f"first: {names}",
        soft_wrap=True,
        markup=False,
    )
    for note in info.untoggled:
        console.print(f"not toggled: {note}", soft_wrap=True, markup=False)
    for line in instrumentation_notes(info):
        console.print(line, soft_wrap=True, markup=False)


def instrumentation_notes(info: AppInfo) -> list[str]:
    """What the app runs with that is not a layer (Sentry, OpenTelemetry's instrumentors), one
    line each, and how to measure it: -m cannot take it away, a variant can."""
    lines = []
    for found in info.instrumentation:
        version = info.imports.get(found["package"])
        package = f"{found['package']} {version}" if version else found["package"]
        lines.append(f"not a layer: {found['name']} ({package}): {found['detail']}")
    if lines:
        lines.append(
            "instrumentation that patches the app from outside stays whatever -m says: measure "
            "it as a variant, the app configured without it (--variant NAME:KEY=VALUE sets the "
            "variables it reads; on compare, profile and micro)"
        )
    return lines


def check_extras(
    target: Target, paths: tuple[str, ...], app_dir: str, python: str | None = None
) -> None:
    """Middlewares given by import path, on a target here: imported and checked against its
    interface before any server starts (the server process adds them around its app)."""
    spec = AppSpec(f"{target.module}:from_env", factory=True, app_dir=app_dir)
    try:
        describe_app(spec, paths, python=python)
    except AppLoadError as exc:
        raise AppLoadError(f"{target.name}: {exc}", param="sets") from None


def check_servers(
    targets: list[str | Target], servers: list[Server] | None, worker_class: str | None = None
) -> None:
    """Every server can serve every target, and agrees with --worker-class: else a usage error
    naming the valid ones, before anything starts."""
    try:
        for server in servers or ():
            for target in targets:
                spec = get_target(target) if isinstance(target, str) else target
                check_serves(server, spec.interface, spec.name)
    except ServerChoiceError as exc:
        raise click.BadParameter(str(exc), param_hint="'--server'") from None
    if worker_class is not None and servers:
        implied = implied_by_worker_class(worker_class)
        if [server.name for server in servers] != [implied]:
            raise click.UsageError(
                f"--worker-class {worker_class} means --server {implied}: give one of the two"
            )


def check_python(
    targets: list[str | Target],
    python: str | None,
    server: Server | None = None,
    worker_class: str | None = None,
) -> None:
    """The one environment `--python` names can serve every target on its server: else a
    one-line usage error, before anything starts."""
    if python is None:
        return
    from harness.experiments.compare.contenders import Contender
    from harness.experiments.compare.environments import check_pythons
    from harness.serving.pythons import find_python

    chosen = find_python(python)
    serving = {}
    for target in targets:
        spec = get_target(target) if isinstance(target, str) else target
        contender = Contender(spec, (), "set", server.name if server else None, chosen.name)
        serving[contender] = spec.server_for(server, worker_class)
    try:
        check_pythons([chosen], serving)
    except HarnessError as exc:
        raise HarnessUsageError(exc.line, param="python") from None


def choose(
    *,
    targets: list[str] | None,
    app: str | None,
    factory: bool,
    app_dir: str,
    sets_text: str,
    request_options: dict[str, Any],
    one_stack: bool = False,
    python: str | None = None,
) -> Chosen:
    """-t or --app (exactly one), the sets against the right names, and the request.
    `one_stack`: -m is one stack (serve, profile: `,` joins names as `+` does), not sets.
    `python`: the interpreter the app is described in (the first environment's)."""

    def resolve(names: tuple[str, ...]) -> list[tuple[str, ...]]:
        if one_stack:
            return [resolve_stack(sets_text, names)]
        return resolve_sets(sets_text, names)

    if (targets is None) == (app is None):
        raise click.UsageError("give -t/--target or --app (not both)")
    request = build_request(**request_options, for_app=app is not None)
    if app is None:
        assert targets is not None
        sets = resolve(ORDER)
        paths = tuple(p for p in extras_of(sets_text) if is_import_path(p))
        for name in targets if paths else ():
            check_extras(get_target(name), paths, app_dir, python)
        return Chosen(list(targets), sets, request)
    info = load_app(app, factory, app_dir, extras_of(sets_text), python)
    return Chosen([target_for(info)], resolve(info.layer_names), request, info)


def choose_from(what: WhatOptions, *, python: str | None, one_stack: bool = False) -> Chosen:
    """`choose` with a command's WhatOptions; `python`: the interpreter an app is described in
    (--python, or the axis's first). `one_stack`: -m is one stack (serve, profile)."""
    chosen = choose(
        targets=what.named_targets,
        app=what.app,
        factory=what.factory,
        app_dir=what.app_dir,
        sets_text=(what.stack if one_stack else what.sets) or "none",
        request_options=what.request_options,
        one_stack=one_stack,
        python=python,
    )
    if chosen.app is not None:
        describe_app_choice(chosen.app)
    return chosen


def what_options(
    *, targets: click.ParamType, help: str, many: bool = False, sets: Decorator | None = None
) -> Decorator:
    """What a command measures, as one WhatOptions: -t (one target, or a comma list with
    `many`), --app and its options, -m (`sets`: a list of sets or one stack) and the request."""
    target = click.option(
        "-t", "--target", "targets" if many else "target", type=targets, help=help
    )
    middlewares = () if sets is None else (sets,)
    return option_group("what", WhatOptions, target, app_options, *middlewares, request_options)
