"""The target table: every reference server, how it is served, and what it is compared with.

This is the single source that `harness targets`, `harness serve`, compare and the tests read.
"""

from __future__ import annotations

from dataclasses import dataclass

from middleware.stack import ORDER
from targets.server_table import WSGI_WORKERS as WSGI_WORKERS  # where commands have read it
from targets.server_table import Server, get_server, resolve_server


@dataclass(frozen=True)
class Target:
    name: str
    framework: str
    interface: str  # "wsgi", "asgi", "aiohttp" or "protocol": which middleware adapter applies
    module: str  # the module whose `from_env()` builds the app inside the server process
    server: str  # the server it runs on unless told otherwise (targets.server_table)
    baseline: str | None  # the raw target on the same server stack; None for `ceiling`
    # A user's own app (`harness --app`): its import spec, served through the harness's loader
    # (`module`), with `factory` and `app_dir` as uvicorn spells them. None for the targets here.
    app: str | None = None
    factory: bool = False
    app_dir: str | None = None
    layers: tuple[str, ...] = ORDER  # the middlewares -m chooses from: ours, or the app's own

    @property
    def default_server(self) -> Server:
        return get_server(self.server)

    def server_for(self, server: Server | None = None, worker_class: str | None = None) -> Server:
        """The server this target runs on with `--server` / `--worker-class` (None: the default);
        ServerChoiceError, naming the valid ones, when it cannot."""
        return resolve_server(self.name, self.interface, self.server, server, worker_class)

    @property
    def is_user_app(self) -> bool:
        return self.app is not None

    @property
    def is_raw(self) -> bool:
        return self.baseline == self.name


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        # name          framework                  interface  module
        #     default server      baseline
        Target("raw-wsgi", "none (bare WSGI)", "wsgi", "targets.raw_wsgi",
               "gunicorn-sync", "raw-wsgi"),
        Target("flask", "Flask", "wsgi", "targets.flask_app",
               "gunicorn-sync", "raw-wsgi"),
        Target("raw-asgi", "none (bare ASGI)", "asgi", "targets.raw_asgi",
               "gunicorn-uvicorn", "raw-asgi"),
        Target("starlette", "Starlette", "asgi", "targets.starlette_app",
               "gunicorn-uvicorn", "raw-asgi"),
        Target("fastapi", "FastAPI", "asgi", "targets.fastapi_app",
               "gunicorn-uvicorn", "raw-asgi"),
        Target("raw-aiohttp", "none (aiohttp low-level server)", "aiohttp", "targets.raw_aiohttp",
               "gunicorn-aiohttp", "raw-aiohttp"),
        Target("aiohttp", "aiohttp web.Application", "aiohttp", "targets.aiohttp_app",
               "gunicorn-aiohttp", "raw-aiohttp"),
        Target("django", "Django (WSGI)", "wsgi", "targets.django_app",
               "gunicorn-sync", "raw-wsgi"),
        Target("django-asgi", "Django (ASGI)", "asgi", "targets.django_asgi",
               "gunicorn-uvicorn", "raw-asgi"),
        Target("ceiling", "none (uvloop + httptools protocol)", "protocol", "targets.ceiling",
               "standalone", None),
    )
}  # fmt: skip


# Where a user's app is served, by the interface it was found to speak: the same server stack and
# raw baseline as the targets here of that interface.
INTERFACE_TARGETS = {"wsgi": "raw-wsgi", "asgi": "raw-asgi", "aiohttp": "raw-aiohttp"}
APP_LOADER = "harness.serving.userapp.entry"


def app_target(
    name: str,
    framework: str,
    interface: str,
    *,
    app: str,
    factory: bool = False,
    app_dir: str | None = None,
    layers: tuple[str, ...] = (),
) -> Target:
    """A user's app as a target: served like the raw target of its interface, compared with it."""
    raw = TARGETS[INTERFACE_TARGETS[interface]]
    return Target(
        name, framework, interface, APP_LOADER, raw.server, raw.name,
        app=app, factory=factory, app_dir=app_dir, layers=layers,
    )  # fmt: skip


class UnknownTarget(ValueError):
    """A target name that is not in TARGETS; the message lists the valid ones."""


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UnknownTarget(f"unknown target {name!r}; valid: {', '.join(TARGETS)}") from None
