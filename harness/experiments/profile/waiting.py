"""Samples of threads that only wait: left out of the shares, and said with their count.

py-spy leaves idle threads out by itself, but it tells them by the thread's state, which it cannot
read while it holds the worker paused (the default, blocking mode). A worker with instrumentation
then has background threads (OpenTelemetry's batch processor, Sentry's transport and monitor) in
every sample, waiting: half the samples of a FastAPI app with Sentry and OpenTelemetry were
`Condition.wait`, and every share of the request path was diluted by them.

A sample waits when its leaf, the innermost Python frame, is a wait (WAITS). A wait done in C
with no Python frame of its own (`time.sleep`, a socket's `recv`) leaves its caller as the leaf:
the known callers that only sleep are in SLEEPERS. Both tables are data: a new one is one line.
"""

from __future__ import annotations

from collections import Counter

from harness.experiments.profile.attribution import module_path
from harness.experiments.profile.collapsed import Frame, Stack, Stacks

# Module path -> the functions there that, as the leaf, are blocked: a lock, a condition, a
# selector, a child process. Names as py-spy gives them (qualified, Python 3.11+) and bare.
WAITS: dict[str, frozenset[str]] = {
    "threading.py": frozenset(
        {
            "Condition.wait",
            "Condition.wait_for",
            "Event.wait",
            "Semaphore.acquire",
            "Barrier.wait",
            "Thread.join",
            "Thread._wait_for_tstate_lock",
            "wait",
            "wait_for",
            "join",
            "_wait_for_tstate_lock",
        }
    ),
    "queue.py": frozenset({"Queue.get", "get"}),  # blocked on its mutex; else Condition.wait
    "selectors.py": frozenset(
        {
            "_PollLikeSelector.select",
            "EpollSelector.select",
            "PollSelector.select",
            "DevpollSelector.select",
            "SelectSelector.select",
            "KqueueSelector.select",
            "select",
        }
    ),
    "socket.py": frozenset({"socket.accept", "accept"}),
    "subprocess.py": frozenset({"Popen.wait", "Popen._wait", "Popen.communicate"}),
}

# Python functions whose time is a C sleep (time.sleep, select.select): their thread waits.
SLEEPERS: dict[str, frozenset[str]] = {
    # Sentry's monitor thread: `while running: time.sleep(interval); check health`.
    "sentry_sdk/monitor.py": frozenset({"Monitor._ensure_running.<locals>._thread"}),
    # gunicorn's arbiter between signals (select.select on its pipe).
    "gunicorn/arbiter.py": frozenset({"Arbiter.sleep"}),
}


def is_wait(frame: Frame) -> bool:
    path = module_path(frame.file)
    return frame.function in WAITS.get(path, ()) or frame.function in SLEEPERS.get(path, ())


def waits(stack: Stack) -> bool:
    """Whether the sample is of a thread that waits (its leaf is a wait)."""
    return bool(stack) and is_wait(stack[-1])


def split_waiting(stacks: Stacks) -> tuple[Stacks, Stacks]:
    """(the samples of threads at work, the samples of threads that wait)."""
    busy: Stacks = Counter()
    waiting: Stacks = Counter()
    for stack, count in stacks.items():
        (waiting if waits(stack) else busy)[stack] += count
    return busy, waiting


def waiting_leaves(waiting: Stacks) -> list[tuple[str, int]]:
    """Each wait (the leaf's function) and its samples, most first."""
    leaves: Counter[str] = Counter()
    for stack, count in waiting.items():
        leaves[stack[-1].function] += count
    return sorted(leaves.items(), key=lambda item: (-item[1], item[0]))


def format_waiting(waiting: Stacks, total: int) -> str | None:
    """The line that says what was left out, or None when nothing was."""
    left_out = sum(waiting.values())
    if not left_out:
        return None
    shown = ", ".join(f"{name} {n}" for name, n in waiting_leaves(waiting)[:4])
    pct = 100.0 * left_out / total if total else 0.0
    return (
        f"left out of the shares: {left_out} samples ({pct:.1f}% of {total}) of threads that only "
        f"wait: {shown}"
    )
