"""Where a server process gets the user's app: `harness.serving.userapp.entry:from_env()`.

The harness cannot hand objects to a server process, so the choice travels in the environment:

    MWBENCH_APP      package.module:attr or /abs/path/to/file.py:attr
    MWBENCH_APP_DIR  first on sys.path (absolute)
    MWBENCH_FACTORY  "1": call attr with no arguments
    MWBENCH_LAYERS   "all" (default), "none", or the app's layer names joined by ","
    MWBENCH_EXTRA    middlewares to add innermost, joined by ",": import specs or spin:N

A bad choice raises gunicorn's AppImportError: gunicorn prints its message on one line (no
traceback) and its arbiter stops with "App failed to load." The harness describes the app in a
subprocess first (`python -m harness.serving.userapp.entry SPEC --json`), so that the interface,
the layer names and any error are known before a server starts.

Only the standard library is imported before the user's app: a user's top-level package may be
called `middleware` or `targets` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Collection, Sequence
from typing import Any

from harness.serving.userapp import instrumentation
from harness.serving.userapp.interface import is_aiohttp_app, qualified
from harness.serving.userapp.layers import Stack
from harness.serving.userapp.spec import (
    AppLoadError,
    AppSpec,
    app_from,
    check_factory,
    import_object,
    is_async_factory,
    load_app_async,
)

ENV_APP = "MWBENCH_APP"
ENV_APP_DIR = "MWBENCH_APP_DIR"
ENV_FACTORY = "MWBENCH_FACTORY"
ENV_LAYERS = "MWBENCH_LAYERS"
ENV_EXTRA = "MWBENCH_EXTRA"


def environment(
    spec: AppSpec, layers: Collection[str] | None = None, extras: Sequence[str] = ()
) -> dict[str, str]:
    """The variables `from_env()` reads; `layers=None` keeps every layer."""
    env = {
        ENV_APP: spec.target,
        ENV_FACTORY: "1" if spec.factory else "0",
        ENV_LAYERS: "all" if layers is None else (",".join(layers) or "none"),
        ENV_EXTRA: ",".join(extras),
    }
    if spec.app_dir is not None:
        env[ENV_APP_DIR] = os.path.abspath(spec.app_dir)
    return env


def parse_layers(text: str | None) -> frozenset[str] | None:
    """`all` (or empty): keep every layer (None); `none`: keep none; else names joined by `,`."""
    if text is None or text.strip() in ("", "all"):
        return None
    if text.strip() == "none":
        return frozenset()
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def parse_extras(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def prepare(
    app: Any, keep: Collection[str] | None, extras: Sequence[str], app_dir: str | None
) -> Any:
    stack = Stack(app)
    loaded = [stack.load_extra(name, app_dir) for name in extras]
    return stack.rebuild(keep, loaded)


def build(
    spec: AppSpec,
    keep: Collection[str] | None = None,
    extras: Sequence[str] = (),
    fresh: bool = False,
) -> Any:
    """The object for the server: the app with the chosen layers and extras, or, for an aiohttp
    async factory, a coroutine function that aiohttp's gunicorn worker awaits in its own loop.
    `fresh`: import the app anew (each call gets its own app, for in-process timing)."""
    obj = import_object(spec.target, spec.app_dir, fresh)
    if is_async_factory(spec, obj):
        check_factory(obj, spec.target)

        async def deferred() -> Any:
            app = await load_app_async(spec)
            if not is_aiohttp_app(app):
                raise AppLoadError(f"async factory {spec.target} gave a non-aiohttp app")
            return prepare(app, keep, extras, spec.app_dir)

        return deferred
    return prepare(app_from(obj, spec), keep, extras, spec.app_dir)


def from_env() -> Any:
    from gunicorn.errors import AppImportError

    try:
        spec = AppSpec(
            target=os.environ[ENV_APP],
            factory=os.environ.get(ENV_FACTORY, "0") == "1",
            app_dir=os.environ.get(ENV_APP_DIR) or None,
        )
    except KeyError:
        raise AppImportError(f"mwbench: {ENV_APP} is not set") from None
    keep = parse_layers(os.environ.get(ENV_LAYERS))
    try:
        served = build(spec, keep, parse_extras(os.environ.get(ENV_EXTRA)))
    except AppLoadError as exc:
        raise AppImportError(f"mwbench: {exc}") from None
    # Deferred only for an aiohttp async factory: a plain ASGI app that is an async function
    # is served as it is (uvicorn would take a coroutine function for a factory).
    if not is_async_factory(spec, import_object(spec.target, spec.app_dir)):
        return served

    async def make_app() -> Any:
        # An aiohttp async factory runs in the worker's loop: its errors are one line there too.
        try:
            return await served()
        except AppLoadError as exc:
            raise AppImportError(f"mwbench: {exc}") from None

    return make_app


def describe(spec: AppSpec, extras: Sequence[str] = ()) -> dict[str, Any]:
    """What the harness needs before it starts a server: the interface (so the server stack),
    the layers and what is not toggled; the extras are loaded and checked against the app."""
    app = asyncio.run(load_app_async(spec))
    stack = Stack(app)
    problem = stack.problem()
    if problem is not None:
        raise AppLoadError(problem)
    info = {
        "interface": stack.interface,
        "framework": qualified(stack.framework),
        "layers": [vars(layer) for layer in stack.layers()],
        "untoggled": stack.untoggled(),
        "instrumentation": instrumentation.found(),
        "imports": imported_distributions(),
    }
    for name in extras:
        stack.check_extra(stack.load_extra(name, spec.app_dir))
    return info


def imported_distributions() -> dict[str, str]:
    """The installed distributions whose modules are imported now, with their versions: what an
    app pulled in (mwbench's own left out)."""
    from importlib import metadata

    owners = metadata.packages_distributions()
    found = {}
    for module in sorted({name.partition(".")[0] for name in sys.modules}):
        for dist in owners.get(module, ()):
            if dist != "mwbench":
                with contextlib.suppress(metadata.PackageNotFoundError):
                    found[dist] = metadata.version(dist)
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="describe an app's middleware layers as JSON")
    parser.add_argument("app")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--app-dir", default=None)
    parser.add_argument("--extra", default="")
    args = parser.parse_args(argv)
    try:
        info = describe(AppSpec(args.app, args.factory, args.app_dir), parse_extras(args.extra))
    except AppLoadError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
