"""The server table: every server a target can run on, and everything the harness knows about it.

One row per server: the interfaces it serves, how its command line is built around a listening
socket the harness bound (an inherited fd), which of its processes serve requests, how it stops,
and whose versions the environment record keeps. `harness targets` shows it as a matrix;
harness.serving.servers starts from it; nothing else spells a server's flags.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

# The listening queue every server keeps: the harness listens with it (bind_socket), and the
# servers that call listen() again on an inherited socket are told the same, or they would
# shrink it (uvicorn to 2048, granian to 1024, hypercorn to 100). gunicorn leaves a listening
# socket as it is.
LISTEN_BACKLOG = 4096
DEFAULT_THREADS = 8  # gunicorn gthread's threads per worker
# granian has no --fd (2.8): this launcher, run in the server process, hands it the inherited
# socket (see the module for why a launcher and not a reserved port).
GRANIAN_LAUNCHER = "harness.serving.granian_fd"
# uvicorn's gunicorn worker left uvicorn for the uvicorn-worker package (uvicorn 0.30): an
# environment with an older uvicorn has it as uvicorn.workers. Either serves: the probe accepts
# either module, and gunicorn is given a class that is the one its environment has.
MODULE_CHOICES = {"uvicorn-worker": ("uvicorn_worker", "uvicorn.workers")}
UVICORN_WORKER = "harness.serving.gunicorn_uvicorn.UvicornWorker"

SYNC_NOTE = (
    "note: gunicorn's sync worker closes the connection after every response (no keep-alive), "
    "so each request wrk sends also pays a TCP handshake"
)
INTERFACE_NAMES = {"wsgi": "WSGI", "asgi": "ASGI", "aiohttp": "aiohttp", "protocol": "protocol"}


@dataclass(frozen=True)
class Launch:
    """What a server's command line is built from."""

    fd: int  # the listening socket, inherited
    module: str  # the module whose `from_env()` builds the app in the server process
    interface: str
    workers: int = 1
    threads: int | None = None
    python: str | None = None  # the interpreter it runs in; None: the harness's own


@dataclass(frozen=True)
class Server:
    name: str
    interfaces: tuple[str, ...]
    what: str  # one line for `harness targets`
    packages: tuple[str, ...]  # whose versions the environment record keeps
    command: Callable[[Launch], list[str]]
    # gunicorn and granian fork their workers from a supervisor that serves nothing; the others
    # serve in the process the harness started.
    serves_in_children: bool
    # Takes --workers. granian could fork more, but its workers share one socket and the
    # harness cannot tell that each has started; stopped before they have, its supervisor can
    # hang until SIGKILL. One worker is what the measurements use anyway.
    multi_worker: bool = False
    worker_class: str | None = None  # gunicorn's -k
    threads: bool = False  # takes --threads
    # Python threads that wait while another works (gthread's pool, granian's worker main
    # thread): py-spy takes them for busy ones, so a profile samples only the GIL's holder.
    profile_gil_only: bool = False
    stop_signal: signal.Signals = signal.SIGTERM
    # uvicorn stops gracefully on SIGTERM and then re-raises it: -15 is its clean exit.
    clean_exits: tuple[int, ...] = (0,)
    note: str | None = None  # said whenever it is used

    def serves(self, interface: str) -> bool:
        return interface in self.interfaces


def _python(launch: Launch, *args: str) -> list[str]:
    return [launch.python or sys.executable, "-m", *args]


def _gunicorn(worker_class: str) -> Callable[[Launch], list[str]]:
    def command(launch: Launch) -> list[str]:
        line = _python(
            launch,
            "gunicorn",
            "--bind", f"fd://{launch.fd}",
            "--workers", str(launch.workers),
            "--worker-class", worker_class,
            "--error-logfile", "-",
            "--log-level", "warning",
            "--graceful-timeout", "2",
        )  # fmt: skip
        if worker_class == "gthread":
            line += ["--threads", str(launch.threads or DEFAULT_THREADS)]
        return [*line, f"{launch.module}:from_env()"]

    return command


def _uvicorn(launch: Launch) -> list[str]:
    return _python(
        launch,
        "uvicorn",
        "--fd", str(launch.fd),
        "--factory",
        "--no-access-log",
        "--log-level", "warning",
        "--loop", "uvloop",
        "--http", "httptools",
        "--backlog", str(LISTEN_BACKLOG),
        f"{launch.module}:from_env",
    )  # fmt: skip


def _hypercorn(launch: Launch) -> list[str]:
    # --workers 0 serves in this one process: with 1, hypercorn spawns a worker and a
    # multiprocessing resource tracker, which survive a supervisor killed outright. Its access
    # log is off unless --access-logfile is given.
    return _python(
        launch,
        "hypercorn",
        "--bind", f"fd://{launch.fd}",
        "--workers", "0",
        "--worker-class", "uvloop",
        "--log-level", "warning",
        "--backlog", str(LISTEN_BACKLOG),
        f"{launch.module}:from_env()",
    )  # fmt: skip


def _granian(launch: Launch) -> list[str]:
    line = _python(
        launch,
        GRANIAN_LAUNCHER, str(launch.fd),
        "--interface", launch.interface,  # granian's default is RSGI
        "--workers", str(launch.workers),
        "--loop", "uvloop",  # what `auto` picks without rloop: the same loop as uvicorn's
        "--log-level", "warning",
        "--backlog", str(LISTEN_BACKLOG),
        "--factory",
    )  # fmt: skip
    if launch.interface == "wsgi":
        # WSGI's default is up to 512 Python threads, started as connections come (64 under
        # wrk -c64); one is the cheapest per request, and the event-loop servers have one too.
        line += ["--blocking-threads", "1"]
    return [*line, f"{launch.module}:from_env"]


def _standalone(launch: Launch) -> list[str]:
    return _python(launch, launch.module, "--fd", str(launch.fd))


SERVERS: dict[str, Server] = {
    s.name: s
    for s in (
        Server("gunicorn-sync", ("wsgi",), "gunicorn, sync worker (no keep-alive)",
               ("gunicorn",), _gunicorn("sync"), serves_in_children=True, multi_worker=True,
               worker_class="sync", note=SYNC_NOTE),
        Server("gunicorn-gthread", ("wsgi",), "gunicorn, gthread worker (threads, keep-alive)",
               ("gunicorn",), _gunicorn("gthread"), serves_in_children=True, multi_worker=True,
               worker_class="gthread", threads=True, profile_gil_only=True),
        Server("gunicorn-uvicorn", ("asgi",), "gunicorn + uvicorn_worker.UvicornWorker",
               ("gunicorn", "uvicorn-worker", "uvicorn"),
               _gunicorn(UVICORN_WORKER), serves_in_children=True,
               multi_worker=True, worker_class="uvicorn_worker.UvicornWorker"),
        Server("gunicorn-aiohttp", ("aiohttp",), "gunicorn + aiohttp's uvloop worker",
               ("gunicorn", "aiohttp"), _gunicorn("aiohttp.worker.GunicornUVLoopWebWorker"),
               serves_in_children=True, multi_worker=True,
               worker_class="aiohttp.worker.GunicornUVLoopWebWorker"),
        Server("uvicorn", ("asgi",), "uvicorn alone (uvloop, httptools), one process",
               ("uvicorn", "uvloop", "httptools"), _uvicorn, serves_in_children=False,
               clean_exits=(0, -signal.SIGTERM)),
        Server("granian", ("wsgi", "asgi"), "granian (Rust, hyper), one worker process",
               ("granian",), _granian, serves_in_children=True, profile_gil_only=True),
        Server("hypercorn", ("asgi",), "hypercorn (h11), one process",
               ("hypercorn", "h11"), _hypercorn, serves_in_children=False),
        Server("standalone", ("protocol",), "the target is its own server",
               ("uvloop", "httptools"), _standalone, serves_in_children=False),
    )
}  # fmt: skip

WSGI_WORKERS = tuple(
    s.worker_class for s in SERVERS.values() if s.serves("wsgi") and s.worker_class
)


class ServerChoiceError(ValueError):
    """A server (or worker class) that cannot serve a target; the message is one line and names
    the valid choices."""


def interface_name(interface: str) -> str:
    return INTERFACE_NAMES.get(interface, interface)


def servers_for(interface: str) -> tuple[str, ...]:
    return tuple(s.name for s in SERVERS.values() if s.serves(interface))


def get_server(name: str) -> Server:
    try:
        return SERVERS[name]
    except KeyError:
        raise ServerChoiceError(f"unknown server {name!r}; valid: {', '.join(SERVERS)}") from None


def check_serves(server: Server | str, interface: str, target: str) -> Server:
    chosen = get_server(server) if isinstance(server, str) else server
    if not chosen.serves(interface):
        kind = interface_name(interface)
        raise ServerChoiceError(
            f"{chosen.name} cannot serve {target} ({kind}); valid for {kind}: "
            f"{', '.join(servers_for(interface))}"
        )
    return chosen


def implied_by_worker_class(worker_class: str) -> str:
    """`--worker-class K` is the server gunicorn-K: the two options name one choice."""
    for server in SERVERS.values():
        if server.serves("wsgi") and server.worker_class == worker_class:
            return server.name
    raise ServerChoiceError(
        f"unknown worker class {worker_class!r}; valid: {', '.join(WSGI_WORKERS)}"
    )


def resolve_server(
    target: str,
    interface: str,
    default: str,
    server: Server | None = None,
    worker_class: str | None = None,
) -> Server:
    """The server `target` runs on: `server` (resolved from its name where it was given), else
    the one `worker_class` names (WSGI only), else the target's default; ServerChoiceError when
    they disagree or it cannot serve the target."""
    if worker_class is not None:
        if interface != "wsgi":
            raise ServerChoiceError(
                f"a worker class applies to WSGI targets only; {target} runs on {default}"
            )
        implied = implied_by_worker_class(worker_class)
        if server is not None and server.name != implied:
            raise ServerChoiceError(
                f"worker class {worker_class} means server {implied}, not {server.name}: give one"
            )
        return check_serves(implied, interface, target)
    return check_serves(server or default, interface, target)


def server_packages() -> tuple[str, ...]:
    """Every package a server here runs on, once each, in table order."""
    return tuple(dict.fromkeys(p for s in SERVERS.values() for p in s.packages))
