"""`instructions`: what the serving processes execute per request, counted, not timed.

The server runs under callgrind (harness.measures.callgrind) on its pinned CPU, 30 to 60 times
slower. After readiness, the answer check and a warm-up (with instrumentation still off, so the
app's caches are warm), instrumentation is switched on and the counters dumped; a window of
exactly N answered requests is sent on one connection, one at a time, each once the server is
blocked (harness.load.paced: where a request finds the server then does not depend on the
machine's speed), and the counters dumped again. Instructions per request are the window's
instructions, summed over the processes that serve (gunicorn's or granian's worker; uvicorn and
hypercorn themselves; a supervisor is left out: it serves nothing).

A server also works per second, not per request: uvicorn's 0.1 s tick, the date header it
renews every second, gunicorn's heartbeat, timers. Under callgrind a window lasts seconds, and
as long again on a slower or busier machine, so that work carried the machine's speed into the
count (issue 33: a CPU hog on the server's core added 0.25% to Starlette's). So the server's
clock runs a thousand times slower (harness.measures.slow_clock): no tick falls in a window, and
the shim's own instructions are left out of each dump. What is left of the work per second is
measured all the same: each window is followed by an idle one of about the same length under
the same callgrind, its instructions over its seconds are the rate b, and the figure is
a = (window's instructions - b x window's seconds) / N. Both parts are kept in each round's
values (`Parts`), and a set whose time part is above 1% of its count is flagged: a server whose
clock the shim does not reach (one that reads the vDSO itself) shows there. Starlette's idle
rate is ~300 instructions a second slowed (215,000 before), its time part 0.0004% of its count;
with a hog on the server's core and without, its counts agree within 0.001% (bench/
instructions_hog.py).

An instruction count does not depend on what else the machine does: two runs agree to
a thousandth of a percent where CPU time on a shared VM varies by tens of percent. It is blind to
what is not an instruction of the serving processes.

`instructions-perf` reads the same from the CPU's counters (`perf stat -e instructions:u`) at
native speed, where the host has a PMU; a VM without one is told so, and pointed to callgrind.
The perf it runs is $HARNESS_PERF when set (another build, a wrapper), else perf on PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import RunError, UsageError
from harness.load.settings import LoadSettings
from harness.machine.lifetime import dies_with_us
from harness.machine.scratch import scratch_directory
from harness.measures import callgrind, slow_clock
from harness.measures.measure import Measure, Probe, WireRound, per_request
from harness.serving.servers import RunningServer
from harness.serving.settings import ServeSettings

# A window of 600 requests: the per-window costs (a connection, the dumps, timers) are a few
# hundredths of a percent of it, and Starlette under callgrind answers it in about a second.
WINDOW_REQUESTS = 600
READY_TIMEOUT_S = 180.0  # FastAPI with seven middlewares: 11 s to start under callgrind here
WINDOW_BOUND_S = 300.0  # a window's most: 600 requests at the 2 req/s of a 1 ms-per-request app
# The idle window: as long as the loaded one (a cost per window, a dump's, then cancels out),
# within these bounds. With the clock slowed it is a check more than a correction: Starlette
# idles at ~300 instructions a second, and a rate 50% off would move its count by 0.0002%; a
# server the shim does not reach (215,000 a second unslowed) shows in up to a second of it.
IDLE_MIN_S = 0.25
IDLE_MAX_S = 1.0
# A time part above this share of the window's count is said: the figure then rests on it.
TIME_SHARE_FLAG = 0.01
BLIND_TO = (
    "kernel time (system calls, the network stack), waits and scheduling, other threads' "
    "contention, and the CPU's speed: an instruction is not a fixed time"
)


class CallgrindInstructions(Measure):
    name: str = "instructions"
    unit: str = "instructions"
    title: str = "instructions per request (callgrind)"
    short: str = "Ir"
    blind_to: str = BLIND_TO
    digits: int = 0
    known_cost: str | None = "work"
    estimated_in_us: bool = True
    side_by_side: bool = True  # a count: a neighbour slows it, it does not change it

    def check(self) -> None:
        callgrind.find_valgrind()
        slow_clock.find_library()

    def prepare(self, serve: ServeSettings, out_dir: Path) -> ServeSettings:
        return serve.replace(
            wrapper=(*callgrind.wrapper(out_dir / "callgrind"), *serve.wrapper),
            ready_timeout=max(serve.ready_timeout, READY_TIMEOUT_S),
            graceful_stop=False,  # its clock is slowed: a graceful stop would take hours
            inherit_env=False,  # the environment's bytes move the heap, and the count with them
        )

    def prepare_load(self, load: LoadSettings) -> LoadSettings:
        return load.replace(
            levels=(1,),
            requests=load.requests or WINDOW_REQUESTS,
            paced=True,
            duration=max(load.duration, WINDOW_BOUND_S),
            warmup=load.warmup or 1.0,
        )

    def probe(self, server: RunningServer) -> Probe:
        return count_windows(server.worker_pids(), _dump_dir(server))

    def read(self, wire: WireRound) -> float | None:
        """The window's instructions over N, time part included: a window with no idle one
        after it (instructions-perf's), or whose idle one gave nothing to read."""
        return per_request(wire.peak.extra.get("instructions"), wire.peak.requests)

    def read_figures(self, wire: WireRound) -> dict[str, float]:
        parts = Parts.from_extra(wire.peak.extra, wire.peak.requests)
        if parts is not None:
            return parts.values(self.name)
        return super().read_figures(wire)

    def flags(self, values: list[dict[str, float]]) -> list[str]:
        largest = largest_time_part(values, self.name)
        if largest is None or largest.time_share <= TIME_SHARE_FLAG:
            return []
        return [f"time part {100 * largest.time_share:.1f}% of the count"]

    def after_stop(self, server: RunningServer) -> None:
        callgrind.clean_up(server.pids_seen(), _dump_dir(server))


@dataclass(frozen=True, kw_only=True)
class Parts:
    """A round's window split into the server's work per request and its work per second."""

    requests: int  # N, answered in the loaded window
    window: float  # the loaded window's instructions
    window_s: float  # its length, dump to dump
    idle: float  # the idle window's instructions, just after, with no requests
    idle_s: float  # its length
    shim: float = 0.0  # the slowed clock's own instructions in the loaded window, left out

    @property
    def per_second(self) -> float:
        """b: what the server does per second of wall time, requests or not."""
        return self.idle / self.idle_s

    @property
    def time_part(self) -> float:
        """Of the loaded window's instructions, those owed to its length: b x its seconds."""
        return self.per_second * self.window_s

    @property
    def per_request(self) -> float:
        """a: the window's instructions less its time part, over the requests."""
        return (self.window - self.time_part) / self.requests

    @property
    def time_share(self) -> float:
        """The time part's share of the loaded window's instructions (flagged above 1%)."""
        return self.time_part / self.window

    def values(self, name: str) -> dict[str, float]:
        """As a round's values: the figure under `name`, its parts under `name.part` (a dot, not
        the colon of a measure's figures: a part is not a figure to compare or gate on). The
        time part is per request, as the figure: the two add up to the window's count over N."""
        return {
            name: self.per_request,
            f"{name}.time_part": self.time_part / self.requests,
            f"{name}.window": self.window,
            f"{name}.window_s": self.window_s,
            f"{name}.idle": self.idle,
            f"{name}.idle_s": self.idle_s,
            f"{name}.per_s": self.per_second,
            f"{name}.requests": float(self.requests),
            f"{name}.shim": self.shim / self.requests,
        }

    @classmethod
    def from_values(cls, values: Mapping[str, float], name: str) -> Parts | None:
        """A round's parts, None for a round stored before they were (its figure is the
        window's instructions over N, time part included)."""
        try:
            return cls(
                requests=int(values[f"{name}.requests"]),
                window=values[f"{name}.window"],
                window_s=values[f"{name}.window_s"],
                idle=values[f"{name}.idle"],
                idle_s=values[f"{name}.idle_s"],
                shim=values.get(f"{name}.shim", 0.0) * values[f"{name}.requests"],
            )
        except KeyError:
            return None

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], requests: int) -> Parts | None:
        """From what the probe added to the measured level; None without an idle window, or
        when a part is missing or empty."""
        needed = ("instructions", "window_s", "idle_instructions", "idle_s")
        if requests <= 0 or any(extra.get(key) is None for key in needed):
            return None
        if extra["window_s"] <= 0 or extra["idle_s"] <= 0:
            return None
        return cls(
            requests=requests,
            window=float(extra["instructions"]),
            window_s=float(extra["window_s"]),
            idle=float(extra["idle_instructions"]),
            idle_s=float(extra["idle_s"]),
            shim=float(extra.get("shim_instructions") or 0.0),
        )


@dataclass(frozen=True)
class LargestTimePart:
    time_share: float  # the largest share of a window's count owed to its length
    per_second: float  # the largest rate of work per second


def largest_time_part(rounds: Sequence[Mapping[str, float]], name: str) -> LargestTimePart | None:
    """Over rounds' values, the largest time share and rate; None when no round has parts."""
    parts = [p for values in rounds if (p := Parts.from_values(values, name))]
    if not parts:
        return None
    return LargestTimePart(max(p.time_share for p in parts), max(p.per_second for p in parts))


def idle_length(window_s: float) -> float:
    """How long the idle window lasts after a loaded window of `window_s` seconds."""
    return min(max(window_s, IDLE_MIN_S), IDLE_MAX_S)


def count_windows(serving: list[int], out_dir: Path) -> Probe:
    """The probe: dump at the window's start and end, then count an idle window as long (for
    every serving process; their windows' lengths are averaged, a few ms apart)."""

    def start(concurrency: int) -> Callable[[], dict[str, Any]]:
        for pid in serving:
            callgrind.instrument(pid, out_dir)
        started = {pid: callgrind.dump_timed(pid, out_dir) for pid in serving}  # it starts

        def finish() -> dict[str, Any]:
            ended = {pid: callgrind.dump_timed(pid, out_dir) for pid in serving}
            window_s = statistics.fmean([ended[pid].at_s - started[pid].at_s for pid in serving])
            # From the first end on: the dumps of the others came after it.
            first_end = min(dumped.at_s for dumped in ended.values())
            time.sleep(max(0.0, idle_length(window_s) - (time.time() - first_end)))
            idled = {pid: callgrind.dump_timed(pid, out_dir) for pid in serving}
            return {
                "instructions": sum(d.instructions for d in ended.values()),
                "instructions_by_pid": {pid: d.instructions for pid, d in ended.items()},
                "shim_instructions": sum(d.shim for d in ended.values()),
                "window_s": window_s,
                "idle_instructions": sum(d.instructions for d in idled.values()),
                "idle_s": statistics.fmean([idled[pid].at_s - ended[pid].at_s for pid in serving]),
            }

        return finish

    return start


def _dump_dir(server: RunningServer) -> Path:
    """Where the server's wrapper has callgrind write its dumps."""
    for arg in server.config.settings.wrapper:
        if arg.startswith("--callgrind-out-file="):
            return Path(arg.partition("=")[2]).parent
    raise RunError("the server does not run under callgrind")


# ---------------------------------------------------------------------------------------------
# The CPU's own counter, where there is one

ENV_PERF = "HARNESS_PERF"


def find_perf() -> str | None:
    """The perf to run, as a path: $HARNESS_PERF when set, else perf on PATH; None if neither
    can be run."""
    return shutil.which(os.environ.get(ENV_PERF) or "perf")


def pmu_problem() -> str | None:
    """Why `perf stat -e instructions:u` cannot count here, or None when it can. perf exits 0
    even when the event is not supported: what it prints says."""
    perf = find_perf()
    if perf is None:
        if os.environ.get(ENV_PERF):
            return f"${ENV_PERF} is not a perf that can be run ({os.environ[ENV_PERF]!r})"
        return "perf is not installed (Debian's linux-perf)"
    try:
        done = subprocess.run(
            [perf, "stat", "-x,", "-e", "instructions:u", "true"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"perf stat did not run: {exc}"
    counted = parse_perf_csv(done.stderr)
    if counted is None:
        said = (done.stderr.strip().splitlines() or ["nothing"])[-1]
        return f"perf stat cannot count instructions:u here ({said})"
    return None


def parse_perf_csv(text: str) -> int | None:
    """The instructions:u count of `perf stat -x,` output; None when it was not counted."""
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) >= 3 and fields[2].startswith("instructions"):
            value = fields[0].strip()
            return int(float(value)) if value.replace(".", "", 1).isdigit() else None
    return None


PERF_START_BOUND_S = 5.0


def _wait_until_it_opens(perf: subprocess.Popen[bytes], output: Path) -> None:
    """Until perf has its output file open: it opens it as it starts, before it counts, so the
    window does not begin while perf is still starting (and a SIGINT then would stop it before
    it wrote anything). Bounded; a perf that exits or never opens it is read as it is."""
    deadline = time.monotonic() + PERF_START_BOUND_S
    fds = Path(f"/proc/{perf.pid}/fd")
    while perf.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == str(output) for fd in fds.iterdir()):
                return
        time.sleep(0.005)


class PerfInstructions(CallgrindInstructions):
    name: str = "instructions-perf"
    title: str = "instructions per request (perf stat, user mode)"
    short: str = "Ir (perf)"
    blind_to: str = BLIND_TO + "; and what the kernel does for the process"

    def check(self) -> None:
        problem = pmu_problem()
        if problem is not None:
            raise UsageError(
                f"instructions-perf needs the CPU's counters, and {problem}: --measure "
                "instructions counts them under callgrind",
                param="measures",
            )

    def prepare(self, serve: ServeSettings, out_dir: Path) -> ServeSettings:
        # native speed: perf attaches to the serving processes for the window; the environment's
        # bytes move the heap, and the count with them
        return serve.replace(inherit_env=False)

    def probe(self, server: RunningServer) -> Probe:
        serving = server.worker_pids()

        def start(concurrency: int) -> Callable[[], dict[str, Any]]:
            handle, name = tempfile.mkstemp(prefix="perf-", suffix=".csv", dir=scratch_directory())
            os.close(handle)
            output = Path(name)
            perf = find_perf() or "perf"  # check() found it before any round
            command = [
                perf,
                "stat",
                "-x,",
                "-e",
                "instructions:u",
                "-o",
                str(output),
                "-p",
                ",".join(map(str, serving)),
            ]
            counting = subprocess.Popen(
                dies_with_us(command, signal.SIGKILL), stdin=subprocess.DEVNULL
            )
            try:
                _wait_until_it_opens(counting, output)
            except BaseException:  # a Ctrl-C while perf starts: it goes too
                counting.kill()
                raise

            def finish() -> dict[str, Any]:
                counting.send_signal(signal.SIGINT)  # perf writes its counts and exits
                try:
                    counting.wait(30)
                finally:
                    with contextlib.suppress(ProcessLookupError):
                        counting.kill()
                text = output.read_text()
                output.unlink(missing_ok=True)
                counted = parse_perf_csv(text)
                return {} if counted is None else {"instructions": counted}

            return finish

        return start

    def after_stop(self, server: RunningServer) -> None:
        return None
