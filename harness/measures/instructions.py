"""`instructions`: what the serving processes execute per request, counted, not timed.

The server runs under callgrind (harness.measures.callgrind) on its pinned CPU, 30 to 60 times
slower. After readiness, the answer check and a warm-up (with instrumentation still off, so the
app's caches are warm), instrumentation is switched on and the counters dumped; a window of
exactly N answered requests is sent on one connection (harness.load.wrk.run_counted: none in
flight when it ends), and the counters dumped again. Instructions per request are the window's
instructions, summed over the processes that serve (gunicorn's or granian's worker; uvicorn and
hypercorn themselves; a supervisor is left out: it serves nothing), over N.

An instruction count does not depend on what else the machine does: two runs agree to
hundredths of a percent where CPU time on a shared VM varies by tens of percent. It is blind to
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
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import RunError, UsageError
from harness.load.settings import LoadSettings
from harness.machine.lifetime import dies_with_us
from harness.measures import callgrind
from harness.measures.measure import Measure, Probe, WireRound, per_request
from harness.serving.servers import RunningServer
from harness.serving.settings import ServeSettings

# A window of 600 requests: the per-window costs (a connection, the dumps, timers) are a few
# hundredths of a percent of it, and Starlette under callgrind answers it in about a second.
WINDOW_REQUESTS = 600
READY_TIMEOUT_S = 180.0  # FastAPI with seven middlewares: 11 s to start under callgrind here
WINDOW_BOUND_S = 300.0  # a window's most: 600 requests at the 2 req/s of a 1 ms-per-request app
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

    def prepare(self, serve: ServeSettings, out_dir: Path) -> ServeSettings:
        return serve.replace(
            wrapper=(*callgrind.wrapper(out_dir / "callgrind"), *serve.wrapper),
            ready_timeout=max(serve.ready_timeout, READY_TIMEOUT_S),
        )

    def prepare_load(self, load: LoadSettings) -> LoadSettings:
        return load.replace(
            levels=(1,),
            requests=load.requests or WINDOW_REQUESTS,
            duration=max(load.duration, WINDOW_BOUND_S),
            warmup=load.warmup or 1.0,
        )

    def probe(self, server: RunningServer) -> Probe:
        out_dir = _dump_dir(server)
        serving = server.worker_pids()

        def start(concurrency: int) -> Callable[[], dict[str, Any]]:
            for pid in serving:
                callgrind.instrument(pid)
                callgrind.dump(pid, out_dir)  # the window starts here

            def finish() -> dict[str, Any]:
                counted = {pid: callgrind.dump(pid, out_dir) for pid in serving}
                return {"instructions": sum(counted.values()), "instructions_by_pid": counted}

            return finish

        return start

    def read(self, wire: WireRound) -> float | None:
        return per_request(wire.peak.extra.get("instructions"), wire.peak.requests)

    def after_stop(self, server: RunningServer) -> None:
        callgrind.clean_up(server.pids_seen(), _dump_dir(server))


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
        return serve  # native speed: perf attaches to the serving processes for the window

    def probe(self, server: RunningServer) -> Probe:
        serving = server.worker_pids()

        def start(concurrency: int) -> Callable[[], dict[str, Any]]:
            handle, name = tempfile.mkstemp(prefix="mwbench-perf-", suffix=".csv")
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
