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

import time
from collections.abc import Sequence
from pathlib import Path

GAP_S = 0.0002  # between two looks: 0.5 ms made raw-asgi's 600-request window 1.46 s, not 1.18
ASLEEP = frozenset("SI")  # interruptible sleep, idle kernel thread; D (disk wait) is busy


def threads_state(pids: Sequence[int]) -> tuple[tuple[str, int], ...] | None:
    """(state, ns run) of every thread of `pids`; None when one of them is gone."""
    found = []
    for pid in pids:
        try:
            tids = sorted(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            return None
        for task in tids:
            try:
                stat = (task / "stat").read_text()
                ran = int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended between the listing and the read
            found.append((stat[stat.rindex(")") + 2], ran))
    return tuple(found)


def wait_until_blocked(pids: Sequence[int], *, bound_s: float, gap_s: float = GAP_S) -> bool:
    """Until every thread of `pids` is asleep and has not run since the look before; False when
    `bound_s` passes first, or a process is gone."""
    deadline = time.monotonic() + bound_s
    before = threads_state(pids)
    while before is not None and time.monotonic() < deadline:
        time.sleep(gap_s)
        now = threads_state(pids)
        if now is not None and now == before and all(state in ASLEEP for state, _ in now):
            return True
        before = now
    return False
