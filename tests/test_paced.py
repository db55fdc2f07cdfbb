"""The paced window of `--measure instructions` (issue 33): whether processes are blocked, read
from /proc; and a count of requests sent one at a time to a real server, each once it is."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.experiments.sweep.plan import SweepError
from harness.experiments.sweep.run import sweep
from harness.load import paced
from harness.load.paced import PacedError, run_paced
from harness.load.request import Request
from harness.load.settings import LoadSettings
from harness.machine.quiet import Watch, wait_until_blocked
from harness.serving.servers import running
from harness.serving.settings import ServeSettings

SLEEPS = "import time\ntime.sleep(60)"
SPINS = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"


@pytest.fixture
def child() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _start(child: list[subprocess.Popen[bytes]], code: str) -> int:
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
    child.append(process)
    time.sleep(0.3)  # past its start, which runs
    return process.pid


def test_a_sleeping_process_is_blocked_and_a_spinning_one_is_not(
    child: list[subprocess.Popen[bytes]],
) -> None:
    sleeping, spinning = _start(child, SLEEPS), _start(child, SPINS)
    with Watch([sleeping]) as watch:
        assert wait_until_blocked(watch, bound_s=2.0)
    started = time.monotonic()
    with Watch([spinning]) as watch:
        assert not wait_until_blocked(watch, bound_s=0.3)
        first = watch.look()
        time.sleep(0.05)
        again = watch.look()  # the files kept open are read afresh
    assert first and again and first[0][0] == again[0][0] == "R" and again[0][1] > first[0][1]
    with Watch([sleeping, spinning]) as watch:
        assert not wait_until_blocked(watch, bound_s=0.3)
    assert time.monotonic() - started < 2.0  # bounded
    with Watch([spinning]) as watch:
        state = watch.look()  # a fresh look, its files just opened
    assert state is not None and state[0][0] == "R"


def test_a_process_that_is_gone_is_not_waited_for(child: list[subprocess.Popen[bytes]]) -> None:
    pid = _start(child, SLEEPS)
    child[0].kill()
    child[0].wait()
    with Watch([pid]) as watch:
        assert watch.look() is None
        assert not wait_until_blocked(watch, bound_s=5.0)


def test_a_paced_window_sends_exactly_the_count_of_the_request_asked(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    asked = Request(method="POST", headers=(("X-Probe", "1"),), body=b"{}")
    with running("raw-asgi", ServeSettings(log_output=f"file:{log}"), stack=("logger",)) as server:
        result = run_paced(
            f"{server.url}/healthz",
            count=50,
            request=asked,
            serving=server.worker_pids(),
            bound=60,
        )
        time.sleep(0.2)  # a 51st would be logged by now
        text = log.read_text()
    assert result.is_ok and result.requests == 50 and result.connections == 1, result.reason
    assert result.extra == {}  # the server was blocked before every request
    assert text.count("method=POST") == 50  # the readiness check's is a GET
    assert result.non2xx3xx == text.count('method=POST path="/healthz" status=404') == 50


def test_a_server_that_never_blocks_is_not_waited_for_past_a_few_requests(
    child: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paced, "IDLE_BOUND_S", 0.2)
    spinning = _start(child, SPINS)  # stands for a server thread that keeps running
    with running("raw-asgi") as server:
        started = time.monotonic()
        result = run_paced(
            f"{server.url}/healthz", count=20, request=Request(), serving=[spinning], bound=60
        )
        took = time.monotonic() - started
    assert result.is_ok and result.requests == 20
    assert result.extra == {"sent_busy": paced.BUSY_LIMIT}
    assert took < 0.2 * paced.BUSY_LIMIT + 5


def test_a_window_that_cannot_be_sent_is_a_failed_result_not_a_traceback(
    child: list[subprocess.Popen[bytes]],
) -> None:
    sleeping = _start(child, SLEEPS)
    with running("raw-asgi") as server:
        url = f"{server.url}/healthz"
    result = run_paced(url, count=10, request=Request(), serving=[sleeping], bound=10)
    assert not result.is_ok and result.requests == 0
    assert result.reason.startswith("0 of 10 requests answered, then: ")
    with pytest.raises(PacedError, match="processes that serve"):
        run_paced(url, count=10, request=Request(), serving=[], bound=10)


def test_a_paced_sweep_without_the_servers_processes_is_refused(tmp_path: Path) -> None:
    load = LoadSettings(levels=(1,), requests=10, paced=True)
    with pytest.raises(SweepError, match="paced load"):
        sweep(url="http://127.0.0.1:9/healthz", out_dir=tmp_path, load=load, progress=False)
    assert not list(tmp_path.iterdir())  # refused before anything was written
