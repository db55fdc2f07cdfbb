"""What to serve a target with, and how: one object, built once by a command and passed whole.

Which server (targets.server_table) and how it runs (workers, gunicorn's worker class and
threads), where (the CPUs it is pinned to, the address), where its middlewares log, and a wrapper
around its command line for a measure that runs the server under a tool (callgrind, say), with
the readiness timeout such a tool needs; the Python environment it runs in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.errors import UsageError
from targets.server_table import Server, ServerChoiceError, get_server

DEFAULT_READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ServeSettings:
    # A server of targets.server_table, resolved: the CLI's --server gives one, a name given
    # here (the API, a compare's server axis) is resolved once, on construction. None: the
    # target's own.
    server: Server | None = None
    workers: int = 1
    worker_class: str | None = None  # gunicorn's, for WSGI: the same as server gunicorn-K
    threads: int | None = None  # gthread only; None: server_table.DEFAULT_THREADS
    cpus: tuple[int, ...] | None = None  # pinned to these CPUs; None: not pinned
    log_output: str | None = None  # stdout, null or file:PATH; None: the command's default
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, bound by the harness
    # The server's command line runs under this prefix (e.g. valgrind and its options); the
    # pinning and parent-death prefixes stay outside it.
    wrapper: tuple[str, ...] = ()
    ready_timeout: float = DEFAULT_READY_TIMEOUT_S
    # Bytes of RSS at which a server measured for memory is killed (None: a quarter of the
    # machine's memory, at most 4 GiB: harness.measures.memory).
    memory_ceiling: int | None = None
    # The interpreter the server runs in (a virtualenv's python: harness.serving.pythons); None:
    # the harness's own.
    python: str | None = None
    # Environment variables the server runs with: a variant's (harness.serving.variants).
    env: tuple[tuple[str, str], ...] = ()
    # False: its stop signal would not end it in time (under callgrind its clock runs slowed a
    # thousandfold, and gunicorn's graceful stop waits in that time): SIGKILL at once.
    graceful_stop: bool = True
    # False: of the harness's environment the server gets only what it needs to run (servers
    # .KEPT_ENVIRONMENT), the rest being its own and a variant's. For a count: CPython's heap, and
    # the tables that hash objects by address, move with every byte of the environment (a
    # 66-byte variable moved Starlette's count by 0.06%), and a CI job's differs from the next.
    inherit_env: bool = True
    # Of the harness's environment, these variables too when not inheriting (--pass-env): what
    # a user's app reads, a database's URL, given by name, its value left out of the results.
    passed_env: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.server, str):
            object.__setattr__(self, "server", as_server(self.server))

    def replace(self, **changes: object) -> ServeSettings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        from harness.serving.variants import redacted

        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {
            **fields,
            "server": self.server.name if self.server else None,
            "env": {k: redacted(k, v) for k, v in self.env},
        }


def as_server(given: Server | str, param: str = "server") -> Server:
    """The server row `given` names (a name is looked up; a row is itself): a UsageError naming
    the valid ones for an unknown name."""
    if isinstance(given, Server):
        return given
    try:
        return get_server(given)
    except ServerChoiceError as exc:
        raise UsageError(str(exc), param=param) from None


DEFAULT_SERVE = ServeSettings()
