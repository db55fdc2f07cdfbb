"""Start a target in its own process group, wait until it answers, and stop all of it.

The Python API under `harness serve`, compare and profile. Every server started here is
registered until stopped, and an exit hook stops whatever is left, so no process outlives the
command that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import select
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness.errors import RunError, UsageError
from harness.machine.cpus import pinned
from harness.machine.lifetime import GroupReaper, dies_with_us
from harness.machine.scratch import scratch_directory
from harness.serving.processes import cpu_seconds, signal_group, still_running
from harness.serving.pythons import environment_for
from harness.serving.settings import DEFAULT_SERVE, ServeSettings
from harness.serving.userapp import entry
from harness.serving.userapp.spec import AppSpec
from middleware.stack import import_paths, is_import_path, is_known
from targets.routes import HEALTHZ_PATH
from targets.server_table import LISTEN_BACKLOG, Launch, Server, ServerChoiceError
from targets.settings import environment
from targets.table import APP_LOADER, Target, get_target

# Readiness: an answer that has begun arriving is read within this; while none has, whether the
# server still lives is asked this often.
ANSWER_TIMEOUT_S = 2.0
ALIVE_POLL_S = 0.05


class ServerError(RunError):
    """A server that would not start, or did not answer in time. The message is one line plus,
    when there is one, the tail of the server's stderr."""


@dataclass(frozen=True)
class ServerConfig:
    """One server to start: the target, its middleware stack, how it is served, and the path
    that must answer before it is up."""

    target: Target
    stack: tuple[str, ...] = ()
    settings: ServeSettings = DEFAULT_SERVE
    ready_path: str = HEALTHZ_PATH  # a user's app: the path of the request to time

    @property
    def serving(self) -> Server:
        """The server row this runs on (ServerChoiceError, a ValueError, when it cannot)."""
        return self.target.server_for(self.settings.server, self.settings.worker_class)

    @property
    def effective_worker_class(self) -> str:
        """gunicorn's worker class, or the server's name for the servers that have none."""
        return self.serving.worker_class or self.serving.name

    @property
    def log_output(self) -> str:
        return self.settings.log_output or "null"


def check_config(config: ServerConfig) -> None:
    """Reject combinations that cannot run, before anything starts (UsageError)."""
    settings = config.settings
    if settings.workers < 1:
        raise UsageError("workers must be at least 1", param="workers")
    try:
        serving = config.serving
    except ServerChoiceError as exc:
        raise UsageError(str(exc), param="server") from None
    if settings.threads is not None and not serving.threads:
        raise UsageError(
            "threads apply to the gthread worker only (server gunicorn-gthread)", param="threads"
        )
    if not serving.multi_worker and settings.workers != 1:
        raise UsageError(
            f"workers must be 1: {serving.name} runs {config.target.name} with one worker",
            param="workers",
        )
    if settings.ready_timeout <= 0:
        raise UsageError("ready_timeout must be positive", param="ready_timeout")


def server_command(config: ServerConfig, fd: int) -> list[str]:
    """The server's command line, inside the settings' wrapper (a tool that runs it)."""
    launch = Launch(
        fd=fd,
        module=served_module(config),
        interface=config.target.interface,
        workers=config.settings.workers,
        threads=config.settings.threads,
        python=config.settings.python,
    )
    return [*config.settings.wrapper, *config.serving.command(launch)]


def served_module(config: ServerConfig) -> str:
    """What the server imports: the target's module, or the app loader when the app is a user's
    or when middlewares given by import path must be added around a target's app."""
    if config.target.is_user_app or import_paths(config.stack):
        return APP_LOADER
    return config.target.module


def app_environment(config: ServerConfig) -> dict[str, str]:
    """What the server process reads to build the app: the stack and log sink of a target here;
    for the app loader, which app, which of its layers and which extras (harness.serving
    .userapp.entry). A user's app takes `spin:N` as an extra; a target here builds it itself."""
    target, stack = config.target, config.stack
    if target.app is not None:
        extras = tuple(name for name in stack if is_known(name) or is_import_path(name))
        layers = [name for name in stack if name not in extras]
        spec = AppSpec(target.app, target.factory, target.app_dir)
        # Every layer described is "all" to the server: a variant may configure a layer away
        # (OTEL=0), and `all` then means what that app has, not a name it lacks.
        kept = None if layers and set(layers) == set(target.layers) else layers
        return {**entry.environment(spec, kept, extras), **environment((), config.log_output)}
    named = tuple(name for name in stack if not is_import_path(name))
    env = environment(named, config.log_output)
    if import_paths(stack):
        spec = AppSpec(f"{target.module}:from_env", factory=True, app_dir=os.getcwd())
        env.update(entry.environment(spec, None, import_paths(stack)))
    return env


@dataclass
class RunningServer:
    config: ServerConfig
    process: subprocess.Popen[bytes]
    host: str
    port: int
    stderr_path: Path | None
    # Kills the server's process group if the harness dies before stop() (its parent-death
    # signal reaches the server's top process alone).
    reaper: GroupReaper | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _seen: dict[int, psutil.Process] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def processes(self) -> list[psutil.Process]:
        """The server's top process and every process below it (gunicorn's and granian's
        workers). psutil's CPU times of a process cover all its threads (granian's Rust ones)."""
        try:
            root = psutil.Process(self.process.pid)
            found = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            found = []
        # Remembered, so that a worker orphaned by a master killed from outside is still known.
        self._seen.update((proc.pid, proc) for proc in found)
        return found

    def pids_seen(self) -> list[int]:
        """Every process of the server seen so far, gone or not."""
        self.processes()
        return list(self._seen)

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the workers of gunicorn and granian, or the
        process itself for the servers that serve in one process."""
        procs = self.processes()
        return [p.pid for p in (procs[1:] if self.config.serving.serves_in_children else procs)]

    @property
    def stopped_cleanly(self) -> bool:
        """Stopped, and by its stop signal rather than SIGKILL (uvicorn's clean exit is -15)."""
        code = self.process.returncode
        return self._stopped and code in self.config.serving.clean_exits

    def stderr_tail(self, lines: int = 15) -> str:
        if self.stderr_path is None or not self.stderr_path.exists():
            return ""
        text = self.stderr_path.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0, *, graceful: bool = True) -> None:
        """The server's stop signal (SIGTERM) to the whole process group, SIGKILL to whatever is
        left after `timeout`. `graceful=False` is SIGKILL at once: for a server whose measurement
        is over, since a graceful stop takes gunicorn 0.35 s (1.3 s with the aiohttp worker) of
        every round's wall time and measures nothing."""
        if self._stopped:
            return
        self._stopped = True
        _LIVE.discard(self)
        self.processes()
        procs = list(self._seen.values())
        if graceful and self.config.settings.graceful_stop:
            signal_group(self.process.pid, self.config.serving.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        else:
            global _killed_cpu_s
            _killed_cpu_s += sum(cpu_seconds(p) for p in procs if p.pid != self.process.pid)
        # Whatever is still in the group now is stuck or orphaned (a master killed from outside
        # leaves its workers behind): it goes too.
        signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()
        # Every process ever seen, even one that left the group, is dead before stop() returns.
        alive = still_running(procs, timeout=max(0.5, timeout / 2))
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        still_running(alive, timeout=2)
        if self.reaper is not None:
            self.reaper.release()

    def __hash__(self) -> int:
        return id(self)


_LIVE: set[RunningServer] = set()
# CPU seconds of the workers of servers killed without grace: their master died with them, so no
# process of ours reaps them and os.times() leaves them out of its children's times.
_killed_cpu_s = 0.0


def killed_cpu_seconds() -> float:
    """What os.times()'s children's times miss of the servers this process killed."""
    return _killed_cpu_s


@atexit.register
def stop_all() -> None:
    """The exit hook: stop every server still running, whatever ended the command."""
    for server in list(_LIVE):
        server.stop()


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen here, and hand the socket to the server: `--port 0` then has no race
    between picking a free port and the server binding it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it (Linux). uvicorn --fd takes the socket for a Unix one and
    # never sets it itself: without it, Nagle and delayed ACKs make every request ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def start_server(
    target: str | Target,
    settings: ServeSettings = DEFAULT_SERVE,
    *,
    stack: tuple[str, ...] = (),
    ready_path: str = HEALTHZ_PATH,
    capture_output: bool = True,
) -> RunningServer:
    """Start `target` with `stack` as `settings` say, wait until it answers and return it; on
    failure nothing is left running and ServerError says why. Up means GET /healthz answers 200
    for a target here, and GET `ready_path` answers at all for a user's app (whether it answers
    right is validated later). UsageError before anything starts when the settings cannot
    serve the target."""
    config = ServerConfig(
        target=get_target(target) if isinstance(target, str) else target,
        stack=stack,
        settings=settings,
        ready_path=ready_path,
    )
    check_config(config)
    sock = bind_socket(settings.host, settings.port)
    bound_port = sock.getsockname()[1]
    stderr_path = None
    output = None  # the server's stdout and stderr: the terminal's, or a log file
    if capture_output:
        output, name = tempfile.mkstemp(
            prefix=f"{config.target.name}-", suffix=".log", dir=scratch_directory()
        )
        stderr_path = Path(name)
    try:
        process = _spawn(config, sock, output)
    finally:
        sock.close()  # the server holds its own copy
        if output is not None:
            os.close(output)
    try:
        reaper = GroupReaper(process.pid)  # the server leads its own group (its own session)
    except BaseException:
        signal_group(process.pid, signal.SIGKILL)
        process.wait()
        raise
    started = RunningServer(config, process, settings.host, bound_port, stderr_path, reaper)
    _LIVE.add(started)
    try:
        wait_ready(started, settings.ready_timeout)
        started.processes()  # remember the workers now that they serve
    except BaseException:
        started.stop()
        if stderr_path is not None:
            stderr_path.unlink(missing_ok=True)
        raise
    return started


def _spawn(
    config: ServerConfig, sock: socket.socket, output: int | None
) -> subprocess.Popen[bytes]:
    """The server's process, serving on `sock`, writing to `output` (a file descriptor; None:
    this process's own stdout and stderr)."""
    settings = config.settings
    inherited = os.environ if settings.inherit_env else _kept(os.environ, settings.passed_env)
    env = {
        **inherited,
        **dict(settings.env),  # a variant's; the harness's own variables below always win
        **app_environment(config),
        **environment_for(settings.python),
    }
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        # SIGTERM if the harness dies: gunicorn then stops its workers itself. The kernel sends
        # it when the *thread* calling this exits: the harness starts servers from its main
        # thread; an API caller must start them from a thread that outlives them.
        dies_with_us(
            pinned(server_command(config, sock.fileno()), config.settings.cpus),
            config.serving.stop_signal,
        ),
        pass_fds=(sock.fileno(),),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        env=env,
        start_new_session=True,  # its own process group, out of reach of the terminal's ^C
    )


# What a server with `inherit_env=False` keeps of the harness's environment: where programs and
# libraries are found, and the locale; the same from one run to the next on one machine.
KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH")


def _kept(environ: Mapping[str, str], passed: tuple[str, ...]) -> dict[str, str]:
    return {name: environ[name] for name in (*KEPT_ENVIRONMENT, *passed) if name in environ}


def passed_lengths(settings: ServeSettings) -> dict[str, int] | None:
    """What a report records of the variables passed by name: their lengths (the count moves
    with the environment's bytes), not their values (a URL may hold a password)."""
    if settings.inherit_env or not settings.passed_env:
        return None
    return {name: len(os.environ.get(name, "")) for name in settings.passed_env}


def _environment_note(server: RunningServer) -> str:
    """Why a user's app may miss a variable it reads: a server for a count has only these."""
    if server.config.settings.inherit_env or not server.config.target.is_user_app:
        return ""
    return (
        f" (for a count it had only {', '.join(KEPT_ENVIRONMENT)} of your environment; "
        "pass one it needs with --pass-env VAR, or set it with --variant NAME:VAR=value)"
    )


def wait_ready(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    path = server.config.ready_path
    any_answer = server.config.target.is_user_app
    last_error = "no answer"
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerError(
                f"{server.config.target.name} exited with code {server.process.returncode} "
                f"before answering{_environment_note(server)}"
                f"{_load_error(server) or _tail(server)}"
            )
        try:
            status = _get_status(server, path, deadline)
            # One worker answering is not enough: load must not start while gunicorn is still
            # forking the others.
            up = any_answer or status == 200
            workers = server.config.settings.workers
            if up and len(server.worker_pids()) >= workers:
                return
            last_error = f"GET {path} answered {status}"
            if up:
                last_error = f"{len(server.worker_pids())} of {workers} workers up"
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, cut short
            last_error = str(exc) or type(exc).__name__
        time.sleep(0.05)
    raise ServerError(
        f"{server.config.target.name} did not answer GET {path} within {timeout:g}s "
        f"({last_error}){_tail(server)}"
    )


def _load_error(server: RunningServer) -> str:
    """The app loader's one-line reason (`mwbench: ...`, alone on its line under gunicorn, after
    the exception's name in the other servers' tracebacks), if that is why it exited."""
    for line in reversed(server.stderr_tail(40).splitlines()):
        _, found, reason = line.partition("mwbench: ")
        if found:
            return f": {reason}"
    return ""


def _tail(server: RunningServer) -> str:
    tail = server.stderr_tail()
    return f"; its stderr ends with:\n{tail}" if tail else ""


def _get_status(server: RunningServer, path: str, deadline: float) -> int:
    """The status of one GET, waited for until `deadline` while the server lives. One request
    however long the server takes to start: its socket listens before it does, and a request
    given up on and sent again would be one more that it answers as it starts, more of them the
    slower it starts (under callgrind, 2 s a try, a CPU hog made it two: another start, and
    raw-asgi then counted 0.15% fewer instructions per request, every window)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=ANSWER_TIMEOUT_S)
    try:
        conn.request("GET", path)
        while not select.select([conn.sock], [], [], ALIVE_POLL_S)[0]:
            if not server.alive() or time.monotonic() > deadline:
                raise TimeoutError("no answer")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextlib.contextmanager
def running(
    target: str | Target,
    settings: ServeSettings = DEFAULT_SERVE,
    *,
    stack: tuple[str, ...] = (),
    ready_path: str = HEALTHZ_PATH,
) -> Iterator[RunningServer]:
    """`start_server` as a context manager: the server is stopped however the block ends."""
    server = start_server(target, settings, stack=stack, ready_path=ready_path)
    try:
        yield server
    finally:
        server.stop()
        if server.stderr_path is not None:
            server.stderr_path.unlink(missing_ok=True)
