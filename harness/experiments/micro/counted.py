"""Instructions per request in-process: micro's drivers run under callgrind, in a child.

The child (`python -m harness.experiments.micro.counted SPEC`) builds one app and its driver with
instrumentation off, answers once to be checked, then waits on its stdin: each line is a number
of requests to answer. The parent switches instrumentation on, dumps the counters between
batches (harness.measures.callgrind), and takes each repeat's per-request cost as the difference
of a short and a long batch, which cancels what a batch costs besides its requests (the read of
the line, the call into the loop).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.experiments.micro.driver import MicroError
from harness.experiments.micro.replay import MicroRequest
from harness.experiments.micro.timing import Series
from harness.measures import callgrind
from targets.table import Target

BATCHES = (100, 400)  # a repeat: the difference of these two batches, 300 requests apart
READY_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Job:
    """One app for the child to build and drive: a set of a target, or the interface's empty
    app (`empty`)."""

    target: Target
    stack: tuple[str, ...]
    request: MicroRequest
    log_output: str
    empty: bool = False


def count(job: Job, repeat: int, label: str) -> Series:
    """`repeat` values of `job`'s instructions per request."""
    with tempfile.TemporaryDirectory(prefix="mwbench-micro-cg-") as tmp:
        out = Path(tmp)
        spec = out / "job.pickle"
        spec.write_bytes(pickle.dumps(job))
        command = [*callgrind.wrapper(out), sys.executable, "-m", __name__, str(spec)]
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            return Series(label, BATCHES[1] - BATCHES[0], _repeats(child, out, repeat))
        finally:
            child.kill()
            child.wait()
            callgrind.clean_up([child.pid], out)


def _say(child: subprocess.Popen[str], line: str) -> str:
    assert child.stdin is not None and child.stdout is not None
    if line:
        child.stdin.write(line + "\n")
        child.stdin.flush()
    answer = child.stdout.readline().strip()
    if not answer.startswith("ok"):
        error = child.stderr.read() if child.stderr is not None else ""
        said = answer or (error.strip().splitlines() or ["no answer"])[-1]
        raise MicroError(f"the counted child failed: {said}")
    return answer


def _repeats(child: subprocess.Popen[str], out: Path, repeat: int) -> list[float]:
    _say(child, "")  # built, checked, warm
    callgrind.instrument(child.pid, out)
    callgrind.dump(child.pid, out)
    values = []
    for _ in range(repeat):
        counted = []
        for batch in BATCHES:
            _say(child, str(batch))
            counted.append(callgrind.dump(child.pid, out))
        values.append((counted[1] - counted[0]) / (BATCHES[1] - BATCHES[0]))
    return values


def _serve(job: Job) -> None:
    from harness.experiments.micro.callables import EMPTY_APPS, build_app, make_driver
    from harness.experiments.micro.driver import event_loop
    from harness.experiments.micro.replay import check_reply

    with event_loop() as loop:
        interface = job.target.interface
        app = (
            EMPTY_APPS[interface] if job.empty else build_app(job.target, job.stack, job.log_output)
        )
        driver = make_driver(interface, app, job.request, loop=loop, log_output=job.log_output)
        try:
            reply = driver.check()
            problems = [] if job.empty else check_reply(reply, job.request, job.stack)
            if problems:
                print("error: " + "; ".join(problems), flush=True)
                return
            driver.run(BATCHES[1])  # warm, as the timed micro is
            print("ok ready", flush=True)
            for line in sys.stdin:
                driver.run(int(line))
                print("ok", flush=True)
        finally:
            driver.close()


def main(argv: list[str]) -> int:
    job: Any = pickle.loads(Path(argv[0]).read_bytes())
    _serve(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
