"""File descriptors: wrk holds one per connection, and inherits our limit."""

from __future__ import annotations

import contextlib
import resource

# wrk's own descriptors besides the connections: stdio, one epoll per thread, a pipe or two.
_WRK_OVERHEAD = 16


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (what an unprivileged process may do) and
    return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        # A kernel cap below the hard limit refuses it: keep what we have then.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft


def fds_needed(connections: int, threads: int) -> int:
    return connections + threads + _WRK_OVERHEAD


def fd_shortfall(connections: int, threads: int, limit: int) -> str | None:
    """Why a level cannot run under `limit`, or None if it can."""
    needed = fds_needed(connections, threads)
    if needed <= limit:
        return None
    return (
        f"needs about {needed} file descriptors, the limit is {limit} "
        f"(raise the hard limit: ulimit -Hn, /etc/security/limits.conf)"
    )
