"""Valgrind's callgrind: the one place that knows its command line, `callgrind_control` and the
files it writes.

A server runs under callgrind with instrumentation off (`--instr-atstart=no`: it starts and warms
up at a tenth of its native speed instead of a fiftieth), and `--trace-children=yes`, without
which a forked worker (gunicorn's, granian's) cannot be reached by callgrind_control. For a
window of load, instrumentation is switched on and the counters dumped (a dump ends one window
and starts the next; `-z` would leave the costs from before the zero in the dump's totals), and
the window's instructions are the `summary:` of the dump at its end: every thread's, summed.
When a dump was taken is when callgrind wrote it (the file's modification time): the moment
inside the server, not when callgrind_control, a tenth of a second later, came back.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import RunError

CONTROL_TIMEOUT_S = 60.0  # a dump of a busy server under valgrind waits for its next block
_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.M)


class CallgrindError(RunError):
    """callgrind could not be reached or read; one line."""


def find_valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None or shutil.which("callgrind_control") is None:
        raise CallgrindError(
            "valgrind (with callgrind_control) is not installed: make setup installs Debian's "
            "valgrind"
        )
    return found


def wrapper(out_dir: Path) -> tuple[str, ...]:
    """The prefix that runs a server under callgrind, its dumps in `out_dir`, with a fixed hash
    seed (the same dict layouts, the same instructions, in every run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return (
        "env",
        "PYTHONHASHSEED=0",
        find_valgrind(),
        "--tool=callgrind",
        "--trace-children=yes",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/cg.%p",
        "--dump-line=no",
        "--dump-instr=no",
    )


def _control(*args: str) -> str:
    try:
        done = subprocess.run(
            ["callgrind_control", *args],
            capture_output=True,
            text=True,
            timeout=CONTROL_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CallgrindError(f"callgrind_control {' '.join(args)} did not answer") from None
    # It exits 0 even when it found no such process: it says "OK." when it did something.
    if "OK." not in done.stdout:
        last = (done.stdout.strip() or done.stderr.strip() or "no answer").splitlines()[-1]
        raise CallgrindError(f"callgrind_control {' '.join(args)}: {last}")
    return done.stdout


def instrument(pid: int) -> None:
    """Switch instrumentation on in process `pid`."""
    _control("-i", "on", str(pid))


@dataclass(frozen=True, kw_only=True)
class Dump:
    """One dump: the instructions of the window it ended, and when callgrind wrote it."""

    instructions: int
    # The dump file's modification time, in seconds of the realtime clock (to the kernel's
    # tick, a few ms): the moment the window ended in the server. callgrind_control returns
    # 0.1-0.2 s after it, later still on a busy core, so its own timing would stretch a window.
    at_s: float


def dump(pid: int, out_dir: Path) -> int:
    """Dump `pid`'s counters (ending the window since the last dump) and return the window's
    instructions, every thread's; the dump file is read and removed."""
    return dump_timed(pid, out_dir).instructions


def dump_timed(pid: int, out_dir: Path) -> Dump:
    """`dump`, with the moment callgrind wrote the dump."""
    before = set(glob.glob(str(out_dir / f"cg.{pid}.*")))
    _control("-d", str(pid))
    deadline = time.monotonic() + CONTROL_TIMEOUT_S
    while time.monotonic() < deadline:
        for name in set(glob.glob(str(out_dir / f"cg.{pid}.*"))) - before:
            path = Path(name)
            text = path.read_text(errors="replace")
            if "\ntotals:" in text:  # complete: the last line is written
                written = path.stat().st_mtime_ns / 1e9
                found = _SUMMARY.search(text)
                path.unlink(missing_ok=True)
                if found is None:
                    raise CallgrindError(f"{name}: a dump without a summary line")
                return Dump(instructions=int(found.group(1)), at_s=written)
        time.sleep(0.01)
    raise CallgrindError(f"callgrind wrote no dump of pid {pid} in {CONTROL_TIMEOUT_S:g}s")


def clean_up(pids: list[int], out_dir: Path) -> None:
    """What a process killed under valgrind leaves: its gdbserver pipes in /tmp, its dumps."""
    for pid in pids:
        for leftover in glob.glob(f"/tmp/vgdb-pipe-*-{pid}-*"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        for dumped in glob.glob(str(out_dir / f"cg.{pid}*")):
            with contextlib.suppress(OSError):
                os.unlink(dumped)
