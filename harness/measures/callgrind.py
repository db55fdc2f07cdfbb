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

The server's clock runs slowed (harness.measures.slow_clock); what its shim executes is read
from the dump (the shim's own functions, and what they call other than the functions they stand
in for) and left out of the window's instructions.
"""

from __future__ import annotations

import contextlib
import glob
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import RunError
from harness.measures import slow_clock

VGDB_PREFIX = "vgdb"
CONTROL_TIMEOUT_S = 60.0  # a dump of a busy server under valgrind waits for its next block
_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.M)
_COMPRESSED = re.compile(r"\((\d+)\)\s*(.*)")
# The name lines of a dump, and the table each one's compressed names are in.
_NAMED = (
    {key: "ob" for key in ("ob", "cob")}
    | {key: "fl" for key in ("fl", "fi", "fe", "cfi", "cfl")}
    | {key: "fn" for key in ("fn", "cfn")}
)


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
        *slow_clock.environment(),
        find_valgrind(),
        "--tool=callgrind",
        "--trace-children=yes",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/cg.%p",
        # vgdb's pipes beside the dumps, not in /tmp: a server killed outright (SIGKILL, as a
        # harness killed outright has its group killed) cannot remove them.
        f"--vgdb-prefix={out_dir}/{VGDB_PREFIX}",
        "--dump-line=no",
        "--dump-instr=no",
    )


def _control(out_dir: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["callgrind_control", f"--vgdb-prefix={out_dir}/{VGDB_PREFIX}", *args],
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


def instrument(pid: int, out_dir: Path) -> None:
    """Switch instrumentation on in process `pid`, run with `wrapper(out_dir)`."""
    _control(out_dir, "-i", "on", str(pid))


@dataclass(frozen=True, kw_only=True)
class Dump:
    """One dump: the instructions of the window it ended, and when callgrind wrote it."""

    instructions: int  # the clock shim's left out
    shim: int = 0  # the clock shim's instructions, left out
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
    _control(out_dir, "-d", str(pid))
    deadline = time.monotonic() + CONTROL_TIMEOUT_S
    while time.monotonic() < deadline:
        for name in set(glob.glob(str(out_dir / f"cg.{pid}.*"))) - before:
            path = Path(name)
            text = path.read_text(errors="replace")
            if "\ntotals:" in text:  # complete: the last line is written
                written = path.stat().st_mtime_ns / 1e9
                path.unlink(missing_ok=True)
                total, shim = read_dump(text, name)
                return Dump(instructions=total - shim, shim=shim, at_s=written)
        time.sleep(0.01)
    raise CallgrindError(f"callgrind wrote no dump of pid {pid} in {CONTROL_TIMEOUT_S:g}s")


def read_dump(text: str, name: str = "a dump") -> tuple[int, int]:
    """A dump's instructions (its `summary:`) and, of them, the clock shim's: the self cost of
    its functions and what they call, except a function of the name they stand in for
    (`clock_gettime` calls libc's `clock_gettime`, which the server would have called anyway)."""
    found = _SUMMARY.search(text)
    if found is None:
        raise CallgrindError(f"{name}: a dump without a summary line")
    shim_self = 0
    shim_functions: set[str] = set()
    outwards: list[tuple[str, int]] = []  # (callee, inclusive cost) of calls out of the shim
    for cost in _costs(text):
        if slow_clock.OBJECT not in cost.ob:
            continue
        shim_functions.add(cost.fn)
        if cost.callee is None:
            shim_self += cost.amount
        elif slow_clock.OBJECT not in cost.callee[0]:
            outwards.append((cost.callee[1], cost.amount))
    stood_in = {function.partition("@")[0] for function in shim_functions}
    extra = sum(amount for callee, amount in outwards if callee.partition("@")[0] not in stood_in)
    return int(found.group(1)), shim_self + extra


@dataclass(frozen=True)
class _Cost:
    ob: str  # the object (library) of the function it is charged to
    fn: str
    callee: tuple[str, str] | None  # (object, function) for a call's inclusive cost
    amount: int


def _costs(text: str) -> Iterator[_Cost]:
    """Every cost line of a dump, with what it is charged to: a function's own cost, or the
    inclusive cost of one of its calls (the line after `calls=`)."""
    walk = _Walk()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in _NAMED and value:
            walk.name_line(key, value)
        elif key == "calls":
            walk.in_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            yield walk.cost_line(line)


class _Walk:
    """Where a walk through a dump is: the function costs are charged to, and the callee of a
    call's cost. Names are compressed: "(7) name" defines 7 in its kind's table (objects, files,
    functions), "(7)" uses it."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, str], str] = {}
        self.ob = self.fn = self.callee_ob = self.callee_fn = ""
        self.in_call = False

    def name_line(self, key: str, value: str) -> None:
        kind = _NAMED[key]
        match = _COMPRESSED.match(value)
        name = value
        if match is not None:
            if match.group(2):
                self.names[kind, match.group(1)] = match.group(2)
            name = self.names.get((kind, match.group(1)), value)
        if key == "ob":
            self.ob = self.callee_ob = name
        elif key == "fn":
            self.fn, self.callee_ob = name, self.ob  # a call's object is its caller's unless said
        elif key == "cob":
            self.callee_ob = name
        elif key == "cfn":
            self.callee_fn = name

    def cost_line(self, line: str) -> _Cost:
        fields = line.split()
        amount = int(fields[1]) if len(fields) > 1 else 0
        callee = (self.callee_ob, self.callee_fn) if self.in_call else None
        if self.in_call:
            self.in_call, self.callee_ob = False, self.ob
        return _Cost(self.ob, self.fn, callee, amount)


def clean_up(pids: list[int], out_dir: Path) -> None:
    """What a process killed under valgrind leaves: its gdbserver's pipes, its dumps."""
    for pid in pids:
        left = [*out_dir.glob(f"{VGDB_PREFIX}-*-{pid}-*"), *out_dir.glob(f"cg.{pid}*")]
        for leftover in left:
            with contextlib.suppress(OSError):
                leftover.unlink()
