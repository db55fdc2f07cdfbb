"""granian's own command line, on a listening socket the harness bound: `python -m
harness.serving.granian_fd FD [granian options] APP`.

granian 2.8 has no --fd. On Linux its supervisor binds a throwaway socket and each worker binds
its own with SO_REUSEPORT; only for a Unix socket does it hand one socket (a SocketHolder) to its
workers. This launcher takes that path for the inherited TCP socket, so granian is started like
every other server here: the harness binds (port 0 without a race, one "cannot bind" error, its
listen backlog and TCP_NODELAY), the server inherits. The alternative, the harness holding a
bound but not listening port while granian binds it by number, was the fallback; it would make
granian the one server started a different way. The price is two private names of granian's
(MPServer._init_shared_socket, _granian.SocketHolder), hence the pin to granian 2.8.x in
pyproject.toml and the check below, which fails in one line if they change.

Runs in the server process: it imports the standard library and granian, nothing of the harness.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
from typing import Any

PR_SET_PDEATHSIG = 1


def fail(message: str) -> None:
    print(f"mwbench: {message}", file=sys.stderr)
    sys.exit(2)


def die_with_parent() -> None:
    """granian forks its workers, and the kernel clears PR_SET_PDEATHSIG at fork: set it again in
    every child, so a worker dies with granian's supervisor even when that is killed outright
    (the supervisor itself gets its signal from whatever started it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    parent = os.getpid()

    def rearm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the supervisor died before prctl took hold
            os._exit(1)

    os.register_at_fork(after_in_child=rearm)


def logs_to_stderr() -> None:
    """granian logs everything, app tracebacks included, to stdout; the harness keeps a server's
    stderr for its error messages."""
    from granian import log

    handlers: dict[str, dict[str, str]] = log.LOGGING_CONFIG["handlers"]  # type: ignore[assignment]
    for handler in handlers.values():
        handler["stream"] = "ext://sys.stderr"


def share_inherited_socket(fd: int) -> None:
    try:
        from granian._granian import SocketHolder
        from granian.server.mp import MPServer
    except ImportError as exc:
        fail(f"{exc}: mwbench needs granian 2.8.x")

    def init_shared_socket(self: Any) -> None:
        sock = socket.socket(fileno=fd)  # family and type come from the fd
        sock.set_inheritable(True)
        self.bind_addr, self.bind_port = sock.getsockname()[:2]  # for its "Listening at" line
        self._ssp = None
        self._shd = SocketHolder(fd, False, self.backlog)  # type: ignore[call-arg]  # (fd, uds, backlog)
        self._sfd = fd
        self._sso = sock  # closed by granian's _drop_shared_socket at shutdown

    if not callable(getattr(MPServer, "_init_shared_socket", None)):
        fail("granian has no MPServer._init_shared_socket: mwbench needs granian 2.8.x")
    MPServer._init_shared_socket = init_shared_socket  # type: ignore[method-assign]


def main() -> None:
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        fail("usage: python -m harness.serving.granian_fd FD [granian options] APP")
    fd = int(sys.argv.pop(1))
    if multiprocessing.get_start_method() != "fork":
        # The worker inherits the socket across fork; a spawned worker would need it passed.
        fail("granian on an inherited socket needs the 'fork' start method")
    try:
        from granian import cli
    except ImportError:
        fail("granian is not installed: pip install 'granian>=2.8,<2.9'")
    share_inherited_socket(fd)
    logs_to_stderr()
    die_with_parent()
    cli.entrypoint()


if __name__ == "__main__":
    main()
