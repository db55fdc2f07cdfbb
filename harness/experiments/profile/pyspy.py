"""py-spy: find it, check it can attach, record collapsed stacks, and stop it however we end.

The one place that knows py-spy's command line and its error messages.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import RunError
from harness.machine.lifetime import dies_with_us, run_to_its_end

ENV_PY_SPY = "HARNESS_PY_SPY"
PTRACE_FIX = (
    "run as root, or `sudo sysctl kernel.yama.ptrace_scope=0`, "
    "or start the container with `--cap-add SYS_PTRACE`"
)
# py-spy says `Permission Denied: Try running again with elevated permissions ...` (or, in
# docker, `Permission Denied ... SYS_PTRACE capability`); older versions and the raw syscall
# errors say EPERM / `Operation not permitted (os error 1)` / `Permission denied (os error 13)`.
_PERMISSION_RE = re.compile(
    r"permission denied|operation not permitted|\bEPERM\b|\bEACCES\b|SYS_PTRACE", re.IGNORECASE
)
_SAMPLES_RE = re.compile(r"Samples: (\d+) Errors: (\d+)")


class ProfileError(RunError):
    """A profile that cannot be taken or would mean nothing; one line. Defined here, below
    harness.experiments.profile.run, so that py-spy's own errors are profile errors too."""


class PySpyError(ProfileError):
    """py-spy missing, failing, or unable to attach; the message is one line."""


class PtracePermissionError(PySpyError):
    """py-spy may not read the target's memory (ptrace)."""


@dataclass(frozen=True)
class Recording:
    path: Path
    command: list[str]
    samples: int | None  # as py-spy reports them (idle samples included), if it said
    errors: int | None  # samples py-spy failed to take
    interrupted: bool  # stopped before the duration was up


def resolve_py_spy(py_spy: str | None = None) -> str:
    """`py_spy` if given, else $HARNESS_PY_SPY, else the py-spy next to this Python (the venv's),
    else py-spy on PATH."""
    candidate = py_spy or os.environ.get(ENV_PY_SPY)
    if candidate is None:
        beside = Path(sys.executable).with_name("py-spy")
        candidate = str(beside) if beside.exists() else "py-spy"
    found = shutil.which(candidate)
    if found is None:
        raise PySpyError(f"py-spy not found: {candidate!r}; install it (pip install py-spy)")
    return found


def record_command(
    py_spy: str,
    pid: int,
    output: Path,
    *,
    duration: float,
    rate: int,
    nonblocking: bool = False,
    gil: bool = False,
) -> list[str]:
    command = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--output",
        str(output),
        "--duration",
        str(max(1, math.ceil(duration))),
        "--rate",
        str(rate),
        # Aggregate by each function's first line, as pprof aggregates by function: a function
        # is then one row of the table and one box of the flame graph, whatever line it was on.
        "--function",
        # Whole paths, shortened by the harness (reading.short_files): py-spy's short names stop
        # at the first directory without an __init__.py, which drops a namespace package's
        # prefix (opentelemetry/instrumentation/django/ would read `django/`).
        "--full-filenames",
    ]
    # Blocking is the default: pausing the worker for each sample cost ~7% (flask) to ~15%
    # (starlette) of req/s at 250 Hz here, but every stack is whole. --nonblocking cost ~6% and
    # lost 8-40% of the samples to torn reads, more of them in deep stacks: a biased profile.
    if nonblocking:
        command.append("--nonblocking")
    if gil:
        command.append("--gil")
    return command


def failure(pid: int, stderr: str, returncode: int) -> PySpyError:
    """The one-line error for a py-spy that exited with `returncode` and said `stderr`."""
    if _PERMISSION_RE.search(stderr):
        return PtracePermissionError(
            f"py-spy cannot attach to pid {pid}: no ptrace permission; {PTRACE_FIX}"
        )
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = lines[0] if lines else f"exit code {returncode}"
    return PySpyError(f"py-spy failed on pid {pid}: {said}")


def check_attach(pid: int, *, py_spy: str, timeout: float = 20.0) -> None:
    """One `py-spy dump` of `pid`: a ptrace problem is then reported before any load starts."""
    try:
        proc = run_to_its_end([py_spy, "dump", "--pid", str(pid)], timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PySpyError(f"py-spy dump of pid {pid} did not finish in {timeout:g}s") from None
    except OSError as exc:
        raise PySpyError(f"cannot run py-spy {py_spy!r}: {exc}") from None
    if proc.returncode != 0:
        raise failure(pid, proc.stderr + proc.stdout, proc.returncode)


class Recorder:
    """A py-spy record run in the background: `start()`, then `wait()`; `stop()` (always, in a
    finally) ends it early with SIGINT, so py-spy still writes what it sampled, then SIGKILL."""

    def __init__(self, command: list[str], pid: int, output: Path) -> None:
        self.command = command
        self.pid = pid
        self.output = output
        self.process: subprocess.Popen[str] | None = None
        self.interrupted = False

    def start(self) -> None:
        try:
            self.process = subprocess.Popen(
                # Started from profile's py-spy thread, which waits for it: the parent-death
                # signal fires when that thread ends, never before py-spy does.
                dies_with_us(self.command, signal.SIGKILL),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                # Its own group: the terminal's Ctrl-C goes to us, and we stop py-spy ourselves.
                start_new_session=True,
            )
        except OSError as exc:
            raise PySpyError(f"cannot run py-spy {self.command[0]!r}: {exc}") from None

    def wait(self, timeout: float) -> Recording:
        assert self.process is not None, "start() first"
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise PySpyError(f"py-spy did not finish in {timeout:g}s") from None
        if self.process.returncode != 0 and not self.interrupted:
            raise failure(self.pid, stderr + stdout, self.process.returncode)
        if not self.output.exists():
            raise PySpyError(f"py-spy wrote no {self.output}: {(stderr or stdout).strip()}")
        match = _SAMPLES_RE.search(stdout + stderr)
        return Recording(
            path=self.output,
            command=self.command,
            samples=int(match.group(1)) if match else None,
            errors=int(match.group(2)) if match else None,
            interrupted=self.interrupted,
        )

    def stop(self, grace: float = 3.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        self.interrupted = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
