"""Children that die with the harness, however the harness dies.

Stopping what we started on exit, error, Ctrl-C or SIGTERM is the job of `finally` blocks; none
runs when the harness is killed outright (SIGKILL, the OOM killer), and the servers, which sit
in their own sessions, would then run on forever. So every child also gets a parent-death
signal (prctl PR_SET_PDEATHSIG): the kernel sends it to the child the moment its parent dies.
"""

from __future__ import annotations

import shutil
import signal
import subprocess


def dies_with_us(command: list[str], sig: signal.Signals) -> list[str]:
    """`command` prefixed with util-linux's `setpriv --pdeathsig SIG`: setpriv sets the signal
    and then execs the command, and the setting survives exec (as taskset's pinning does, so
    the two prefixes chain either way). Not inherited by the command's own children: a server
    stops its workers itself (gunicorn on SIGTERM, within its --graceful-timeout).

    The kernel sends the signal when the *thread* that started the child exits, not the whole
    process: the harness starts servers and wrk from its main thread, and py-spy from a thread
    that waits for it, so each child's parent thread lives exactly as long as it is needed.
    A harness killed in the microseconds between the fork and setpriv's prctl escapes this.

    Without setpriv (tools/system-deps installs it) the command runs as it is."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return command
    return [setpriv, "--pdeathsig", sig.name.removeprefix("SIG"), *command]


def run_to_its_end(
    command: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`command` run to its end, killed with us and after `timeout` seconds
    (subprocess.TimeoutExpired), with no stdin, its output captured as text."""
    return subprocess.run(
        dies_with_us(command, signal.SIGKILL),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
