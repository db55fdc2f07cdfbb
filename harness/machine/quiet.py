"""Whether processes are blocked: every thread asleep, and none ran between two looks.

A count of instructions per request depends on where the next request finds the server: still
finishing the last one (its reads are then merged into a turn of the event loop it takes
anyway) or blocked in its poll (a turn of its own). Which one it is depends on the machine's
speed: a server sharing its core with a CPU hog counted 0.25% more per request. A load that
sends each request only once the server is blocked (harness.load.paced) takes that out.

Linux only, from /proc: a thread's state (`stat`) and the nanoseconds it has run (`schedstat`).
A thread that is asleep at two looks a short gap apart and has run no nanosecond between them
has nothing left to do but what wakes it; a runnable thread waiting for its CPU is `R`, not
asleep, so a server preempted by a hog is not taken for an idle one.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence

GAP_S = 0.0002  # between two looks: 0.5 ms made raw-asgi's 600-request window 1.46 s, not 1.18
ASLEEP = frozenset("SI")  # interruptible sleep, idle kernel thread; D (disk wait) is busy


class Watch:
    """The threads of `pids`, looked at again and again: their /proc files stay open, and a
    look is two reads per thread (a look that opened them took a tenth of a core from the
    servers it watched, with two of them on two cores)."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = tuple(pids)
        self._files: dict[tuple[int, str], tuple[int, int]] = {}  # (pid, tid): stat, schedstat

    def look(self) -> tuple[tuple[str, int], ...] | None:
        """(state, ns run) of every thread; None when one of the processes is gone."""
        found = []
        for pid in self.pids:
            try:
                tids = sorted(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                return None
            for tid in tids:
                read = self._read(pid, tid)
                if read is not None:  # None: a thread that ended between the listing and now
                    found.append(read)
        return tuple(found)

    def _read(self, pid: int, tid: str) -> tuple[str, int] | None:
        try:
            stat, schedstat = self._files.get((pid, tid)) or self._open(pid, tid)
            text = os.pread(stat, 1024, 0).decode()
            ran = int(os.pread(schedstat, 128, 0).split()[0])
        except (OSError, ValueError, IndexError):
            self._forget(pid, tid)
            return None
        return text[text.rindex(")") + 2], ran

    def _open(self, pid: int, tid: str) -> tuple[int, int]:
        task = f"/proc/{pid}/task/{tid}"
        stat = os.open(f"{task}/stat", os.O_RDONLY)
        try:
            opened = stat, os.open(f"{task}/schedstat", os.O_RDONLY)
        except OSError:
            os.close(stat)
            raise
        self._files[pid, tid] = opened
        return opened

    def _forget(self, pid: int, tid: str) -> None:
        for fd in self._files.pop((pid, tid), ()):
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        for pid, tid in list(self._files):
            self._forget(pid, tid)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until_blocked(watch: Watch, *, bound_s: float, gap_s: float = GAP_S) -> bool:
    """Until every thread watched is asleep and has not run since the look before; False when
    `bound_s` passes first, or a process is gone."""
    deadline = time.monotonic() + bound_s
    before = watch.look()
    while before is not None and time.monotonic() < deadline:
        time.sleep(gap_s)
        now = watch.look()
        if now is not None and now == before and all(state in ASLEEP for state, _ in now):
            return True
        before = now
    return False
