"""Children that die with the harness, however the harness dies.

Stopping what we started on exit, error, Ctrl-C or SIGTERM is the job of `finally` blocks; none
runs when the harness is killed outright (SIGKILL, the OOM killer), and the servers, which sit
in their own sessions, would then run on forever. So every child also gets a parent-death
signal (prctl PR_SET_PDEATHSIG): the kernel sends it to the child the moment its parent dies.
That signal reaches the child alone; a server's workers are stopped by the server, unless it
cannot stop in time (under callgrind its clock is slowed a thousandfold: a graceful stop takes
hours). So a server's whole process group also has a reaper (`GroupReaper`), which also
removes the harness's scratch directory (harness/machine/scratch.py): the exit hook that
would have removed it did not run either.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys

from harness.machine.scratch import scratch_directory


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


# Reads its stdin: a byte means "released", EOF means the harness is gone, however it went, and
# then its group is killed and the harness's scratch directory removed.
_REAPER = """import os, signal, sys
if not sys.stdin.buffer.read(1):
    try:
        os.killpg(int(sys.argv[1]), signal.SIGKILL)
    except OSError:
        pass
    import shutil
    shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


class GroupReaper:
    """A small process that kills process group `pgid` with SIGKILL once this process is gone,
    and removes this process's scratch directory.

    It waits on a pipe whose write end only this process holds (the kernel closes it however
    this process ends, SIGKILL included): end of file and it kills the group. `release()` tells
    it the group is stopped, and it exits. It runs in its own session, out of reach of the
    terminal's ^C, which would otherwise end it before the harness has stopped the group."""

    def __init__(self, pgid: int) -> None:
        read_end, self._write_end = os.pipe()  # neither is inherited by other children
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _REAPER, str(pgid), scratch_directory()],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)

    def release(self) -> None:
        """The group is stopped: the reaper exits without a signal."""
        if self._write_end < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._write_end, b"x")
        with contextlib.suppress(OSError):
            os.close(self._write_end)
        self._write_end = -1
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
