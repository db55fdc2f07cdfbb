"""k6: the open-model load generator. Find it, run one constant-arrival-rate level, read it.

The one place that knows k6's command line, its script and its summary. wrk is a closed loop:
a connection waits for its answer before it sends again, so a stalled server is sent less, and
wrk's rate is the server's, not one asked of it (wrk 4 backfills its percentiles at its own mean
interval against coordinated omission, but the load is still its own). k6's constant-arrival-rate
executor starts requests on a schedule, whatever the answers do; our script times each request
from its *intended* start (`exec.instance.currentTestRunDuration`, µs-precise, against i / rate),
so a request that had to wait for a free VU is not flattered.

k6 is a Go program: on one pinned core its garbage collector, not the server, sets its p99 at a
few thousand requests a second (a collection every ~150 ms, each stalling the schedule ~23 ms).
It runs here with the collector off (GOGC=off) under a memory limit sized for the run
(GOMEMLIMIT, ~17 KB a request), and two scheduler threads (GOMAXPROCS=2), which keeps its own
floor about a millisecond to ~5,000 req/s.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import RunError, UsageError
from harness.load.request import Request
from harness.load.settings import LoadSettings
from harness.machine.cpus import pinned
from harness.machine.lifetime import dies_with_us
from harness.machine.scratch import scratch_directory
from harness.stats.histogram import Histogram

ENV_K6 = "HARNESS_K6"
K6_ENV = {"GOGC": "off", "GOMAXPROCS": "2", "K6_NO_USAGE_REPORT": "true"}
# k6 allocates ~17 KB per request: with the collector off, the memory limit is what brings it
# back, so it is sized for the run (with room), and never above half of the memory available.
BYTES_PER_REQUEST = 24 * 1024
MEMORY_FLOOR = 256 * 1024 * 1024
BEHIND_SHARE = 0.01  # achieved more than 1% under the asked rate: the rate was not sustained
# k6 kept its schedule when at most 1% of its requests started more than this late (it starts
# them up to ~1 ms late at any rate here; its CPU is no guide on short runs, where starting k6
# costs as much as the run).
LATE_P99_MS = 5.0
FAILED_SHARE = 0.01  # more than 1% of the requests failed: the latencies are not the answers'
TRIES = 3  # runs of one rate before k6 falling behind there is believed (run_k6_kept)
MAX_RATE = 200_000  # req/s: above any one machine's k6 (7,000 a core here)

PERCENTILES = (
    ("p50", "med"),
    ("p90", "p(90)"),
    ("p99", "p(99)"),
    ("p99.9", "p(99.9)"),
    ("max", "max"),
)

SCRIPT = """\
import http from 'k6/http';
import exec from 'k6/execution';
import { Trend, Counter } from 'k6/metrics';

const RATE = Number(__ENV.RATE);
const request = JSON.parse(open(__ENV.REQUEST));
const params = { headers: request.headers, responseType: 'none' };
const intended = new Trend('intended', true);  // ms from each request's intended start
const late = new Trend('late', true);  // ms its start came after its intended start
const unexpected = new Counter('unexpected');  // answers of another status than expected

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['min', 'avg', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max', 'count'],
  scenarios: { open: {
    executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s',
    duration: __ENV.DURATION, preAllocatedVUs: Number(__ENV.VUS), maxVUs: Number(__ENV.VUS),
    gracefulStop: '2s',
  } },
};

export default function () {
  const due = exec.scenario.iterationInTest * 1000 / RATE;
  late.add(exec.instance.currentTestRunDuration - due);
  const res = http.request(request.method, request.url, request.body, params);
  intended.add(exec.instance.currentTestRunDuration - due);
  const ok = request.status ? res.status === request.status : res.status >= 200 && res.status < 300;
  if (!ok) unexpected.add(1);
}

export function handleSummary(data) {
  return { [__ENV.SUMMARY]: JSON.stringify(data), stdout: '' };
}
"""


class K6Error(RunError):
    """k6 missing, or a run that gave no summary; one line."""


def resolve_k6(k6: str | None = None) -> str:
    """`k6` if given, else $HARNESS_K6, else the k6 the `k6` package put beside this Python,
    else k6 on PATH."""
    candidates = [k6 or os.environ.get(ENV_K6)] if (k6 or os.environ.get(ENV_K6)) else []
    candidates += [
        str(Path(sysconfig.get_path("scripts")) / "k6"),
        str(Path(sys.executable).parent / "k6"),
        "k6",
    ]
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    raise K6Error(
        "k6 not found: make setup installs it (the k6 package from PyPI), or give its path "
        f"(${ENV_K6})"
    )


def memory_limit(rate: float, duration: float) -> int:
    """GOMEMLIMIT for a run, in bytes: enough that the collector stays off throughout."""
    import psutil

    wanted = int(rate * (duration + 2) * BYTES_PER_REQUEST) + MEMORY_FLOOR
    return max(MEMORY_FLOOR, min(wanted, psutil.virtual_memory().available // 2))


def vus_for(rate: float) -> int:
    """VUs, all allocated up front (allocating more mid-run stalls the schedule): 50 ms of
    arrivals, at least 32, so a server that stalls 20 ms still finds a VU for each request."""
    return max(32, math.ceil(rate * 0.05))


@dataclass
class RateResult:
    """One constant-arrival-rate run: what was asked, what was sustained, the latencies from
    each request's intended start (ms), and whether k6 kept its schedule."""

    rate: float  # asked, req/s
    duration_s: float
    requests: int = 0
    achieved: float = 0.0  # req/s
    dropped: int = 0  # iterations k6 could not start: no free VU
    failed: int = 0  # connection errors and answers of an unexpected status
    avg: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None
    late_p99: float | None = None  # ms after its intended start a request was sent, p99
    http_p50: float | None = None  # k6's own http_req_duration, sent to last byte
    http_p99: float | None = None
    k6_cpu_s: float | None = None
    k6_cpus: int = 1
    status: str = "ok"  # "ok", "behind" (the rate was not sustained: reason says) or "failed"
    reason: str = ""
    # every request's latency from its intended start, when the run was asked to keep them
    histogram: Histogram | None = None

    @property
    def success_pct(self) -> float:
        return 100.0 * (self.requests - self.failed) / self.requests if self.requests else 0.0

    @property
    def k6_busy(self) -> float | None:
        """k6's CPU over the run, as a share of the CPUs it may use."""
        if self.k6_cpu_s is None or not self.duration_s:
            return None
        return self.k6_cpu_s / (self.duration_s * self.k6_cpus)

    @property
    def generator_bound(self) -> bool:
        """k6 did not keep its schedule: what it measured says little of the server."""
        return self.late_p99 is not None and self.late_p99 > LATE_P99_MS

    def percentile(self, name: str) -> float | None:
        """`avg`, `p50`, `p90`, `p99`, `p99.9` or `max`, ms from the intended start."""
        return {
            "avg": self.avg,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "p99.9": self.p999,
            "max": self.max,
        }[name]

    def to_dict(self) -> dict[str, Any]:
        facts = {k: v for k, v in asdict(self).items() if k != "histogram"}
        return {**facts, "success_pct": round(self.success_pct, 4), "k6_busy": self.k6_busy}


def judge(result: RateResult) -> RateResult:
    """Mark a run whose rate was not sustained: achieved more than 1% under the rate, dropped
    iterations, or k6 off its schedule (its p99 lateness over 5 ms); or whose requests failed
    (more than 1%). Its latencies are not the server's at that rate."""
    why = []
    if result.achieved < (1 - BEHIND_SHARE) * result.rate:
        why.append(f"achieved {result.achieved:,.0f} of {result.rate:,.0f} req/s")
    if result.dropped:
        why.append(f"{result.dropped} iterations dropped")
    if result.generator_bound:
        why.append(f"k6 started 1% of its requests {result.late_p99:.1f} ms late or more")
    if why and result.status == "ok":
        result.status, result.reason = "behind", "; ".join(why)
    if result.status == "ok" and result.failed > FAILED_SHARE * result.requests:
        # k6 times a refused connection as 0 ms: the percentiles would flatter the server.
        result.status = "failed"
        result.reason = (
            f"{result.failed:,} of {result.requests:,} requests failed (connection "
            "errors, or another status than expected)"
        )
    return result


def parse_summary(data: dict[str, Any], rate: float, duration_s: float) -> RateResult:
    metrics = data.get("metrics") or {}

    def values(name: str) -> dict[str, Any]:
        return (metrics.get(name) or {}).get("values") or {}

    result = RateResult(rate=rate, duration_s=duration_s)
    requests = values("http_reqs")
    result.requests = int(requests.get("count", 0))
    run_s = (data.get("state") or {}).get("testRunDurationMs", 0) / 1000 or duration_s
    result.achieved = result.requests / min(run_s, duration_s) if result.requests else 0.0
    result.dropped = int(values("dropped_iterations").get("count", 0))  # absent when none
    # The script's own count: an answer of another status than expected, or none (a failed
    # connection's status is 0). k6's http_req_failed would count an expected 404 as failed.
    result.failed = int(values("unexpected").get("count", 0))
    intended = values("intended")
    result.avg = intended.get("avg")
    for field, key in PERCENTILES:
        setattr(result, field.replace(".", ""), intended.get(key))
    result.late_p99 = values("late").get("p(99)")
    http = values("http_req_duration")
    result.http_p50, result.http_p99 = http.get("med"), http.get("p(99)")
    if not result.requests:
        result.status, result.reason = "failed", "no request completed"
    return result


def intended_samples(csv: Path) -> Iterator[float]:
    """Each request's latency from its intended start, ms: the `intended` rows of k6's CSV
    output (metric_name,timestamp,metric_value,...)."""
    with csv.open() as rows:
        for row in rows:
            if row.startswith("intended,"):
                yield float(row.split(",", 3)[2])


def _request_file(url: str, request: Request | None, directory: Path) -> Path:
    asked = request or Request()
    try:
        body = asked.body.decode("utf-8") or None
    except UnicodeDecodeError:
        raise UsageError("k6 sends a body as text: give one that is UTF-8", param="body") from None
    path = directory / "request.json"
    path.write_text(
        json.dumps(
            {
                "url": url,
                "method": asked.method,
                "body": body,
                "headers": dict(asked.headers),
                "status": asked.expect_status,
            }
        )
    )
    return path


def run_k6(
    url: str,
    *,
    rate: float,
    duration: float,
    request: Request | None = None,
    cpus: tuple[int, ...] | None = None,
    k6: str | None = None,
    summary: Path | None = None,
    samples: bool = False,
) -> RateResult:
    """k6 at `rate` requests a second for `duration` seconds against `url`, pinned to `cpus`;
    its summary kept at `summary` when given; with `samples`, every request's latency in the
    result's histogram. K6Error when k6 cannot run or says nothing."""
    _check_rate(rate)
    binary = resolve_k6(k6)
    with tempfile.TemporaryDirectory(prefix="k6-", dir=scratch_directory()) as tmp:
        work = Path(tmp)
        script = work / "open.js"
        script.write_text(SCRIPT)
        out = summary or work / "summary.json"
        env = _k6_env(rate, duration, request=_request_file(url, request, work), summary=out)
        csv = work / "samples.csv"
        command = pinned(_k6_command(binary, script, csv if samples else None), cpus)
        cpu_s, code = _run(command, env, bound=duration + 60)
        if not out.exists():
            raise K6Error(f"k6 exited with code {code} and no summary")
        result = parse_summary(json.loads(out.read_text()), rate, duration)
        if samples and csv.exists():
            result.histogram = Histogram.of(intended_samples(csv))
    result.k6_cpu_s, result.k6_cpus = cpu_s, len(cpus) if cpus else os.cpu_count() or 1
    return judge(result)


def _check_rate(rate: float) -> None:
    """UsageError for a rate k6 cannot be given."""
    if rate != round(rate) or rate < 1:
        # k6 refuses a fractional rate as an invalid configuration, with no summary.
        raise UsageError(f"k6 sends whole requests a second, not {rate:g}", param="rates")
    if rate > MAX_RATE:  # its VUs are allocated up front: 1e9 req/s would be 50 million
        raise UsageError(
            f"{rate:,.0f} req/s is beyond what k6 sends from one machine (a few thousand a "
            f"core here): give at most {MAX_RATE:,}",
            param="rates",
        )


def _k6_env(rate: float, duration: float, *, request: Path, summary: Path) -> dict[str, str]:
    """The environment SCRIPT reads its settings from: the rate, the duration, the request
    (a JSON file) and where to write its summary."""
    return {
        **os.environ,
        **K6_ENV,
        "RATE": f"{rate:g}",
        "DURATION": f"{duration:g}s",
        "VUS": str(vus_for(rate)),
        "REQUEST": str(request),
        "SUMMARY": str(summary),
        "GOMEMLIMIT": str(memory_limit(rate, duration)),
    }


def _k6_command(binary: str, script: Path, csv: Path | None) -> list[str]:
    """k6 running `script` quietly; with `csv`, every sample written there."""
    # Every sample of every metric, a row each: only the status tag, to keep the rows short
    # (2.4 MB for 4,000 requests against 6.1 MB with k6's default tags).
    kept = ["--out", f"csv={csv}", "--system-tags", "status"] if csv is not None else []
    return [
        binary,
        "run",
        "-q",
        "--no-color",
        "--log-output=none",
        "--address=",
        *kept,
        str(script),
    ]


def rate_label(rate: float) -> str:
    """A rate as file names and figure names spell it: 1000, 62.5."""
    return f"{rate:g}"


def run_k6_at(
    url: str,
    rate: float,
    load: LoadSettings,
    *,
    kept_as: Path,
    tries: int = TRIES,
    samples: bool = False,
) -> RateResult:
    """k6 at `rate` with `load`'s duration, request and CPUs, its summary kept as
    KEPT_AS_RATErps.k6.json; run again while k6 itself fell behind (run_k6_kept), up to
    `tries` runs in all."""
    return run_k6_kept(
        url,
        tries=tries,
        rate=rate,
        duration=load.duration,
        request=load.request,
        cpus=load.cpus,
        summary=kept_as.with_name(f"{kept_as.name}_{rate_label(rate)}rps.k6.json"),
        samples=samples,
    )


def run_k6_kept(url: str, *, tries: int = TRIES, **asked: Any) -> RateResult:
    """`run_k6` again, up to `tries` runs in all, while k6 fell behind with no iteration
    dropped. A stall of this VM's CPU for a few ms puts 1% of a short run's requests late with
    every VU free: that says nothing of the rate or the server. A server too slow for the rate
    leaves no VU free (iterations dropped): that run is its answer, and is not run again."""
    result = run_k6(url, **asked)
    for _ in range(tries - 1):
        if result.status != "behind" or result.dropped:
            break
        result = run_k6(url, **asked)
    return result


def _run(command: list[str], env: dict[str, str], bound: float) -> tuple[float, int]:
    """Run k6 to its end (killed at `bound` seconds); its CPU seconds, from its rusage, and its
    exit code. It dies with us, and a Ctrl-C here stops it."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        proc = subprocess.Popen(
            dies_with_us(command, signal.SIGKILL),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        with _alarm_kill(proc, bound):
            _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, 0)
        proc.returncode = -9
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, proc.returncode


@contextlib.contextmanager
def _alarm_kill(proc: subprocess.Popen[bytes], bound: float) -> Any:
    import threading

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(bound, kill)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
