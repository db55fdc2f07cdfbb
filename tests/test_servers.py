"""Starting, failing and stopping servers: nothing is left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

import harness.serving.servers
from harness.cli.main import main
from harness.experiments.compare.plan import CompareRequest, plan_compare
from harness.serving.processes import cpu_seconds
from harness.serving.servers import RunningServer, ServerError, running, start_server
from harness.serving.settings import ServeSettings
from targets.table import Target, app_target
from tests.conftest import group_members, request


def test_stop_leaves_no_process_of_the_group() -> None:
    with running("flask", ServeSettings(workers=2)) as server:
        pids = [p.pid for p in server.processes()]
        assert len(pids) == 3  # gunicorn master + 2 workers
        assert len(server.worker_pids()) == 2
        assert os.getpgid(server.pid) == server.pid  # its own process group
    assert group_members(server.pid) == []
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids
    )


@pytest.mark.parametrize("target", ["aiohttp", "starlette"])
def test_stop_without_grace_kills_the_whole_group_at_once(target: str) -> None:
    server = start_server(target, ServeSettings(workers=2))
    pids = [p.pid for p in server.processes()]
    workers = server.processes()[1:]
    # Some CPU in the workers first: aiohttp's imports are in the master before the fork, and a
    # worker that answered one request may still read 0.00 s (the kernel counts in 10 ms ticks).
    deadline = time.monotonic() + 10
    for _ in range(5000):
        if sum(cpu_seconds(w) for w in workers) >= 0.02 or time.monotonic() > deadline:
            break
        request(server.url)
    worked = sum(cpu_seconds(w) for w in workers)
    assert worked >= 0.02
    before = harness.serving.servers.killed_cpu_seconds()
    server.stop(graceful=False)
    # the workers' CPU, which no process of ours reaps, is kept (sums of floats: a margin)
    assert harness.serving.servers.killed_cpu_seconds() - before >= worked - 1e-9
    # SIGKILL, not the stop signal first (a graceful stop takes gunicorn 0.35 s, 1.3 s with the
    # aiohttp worker; bench/ has the figures, not this test)
    assert server.process.returncode == -signal.SIGKILL
    assert not server.stopped_cleanly  # it was killed, and says so
    assert group_members(server.pid) == []
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids
    )


def test_a_server_that_dies_at_start_reports_its_stderr_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[RunningServer] = []
    real_wait = harness.serving.servers.wait_ready

    def recording_wait(server: RunningServer, timeout: float) -> None:
        seen.append(server)
        real_wait(server, timeout)

    monkeypatch.setattr(harness.serving.servers, "wait_ready", recording_wait)
    # A stack name the harness would reject reaches the worker only through this back door:
    # the app factory then fails inside gunicorn's worker, which is what a broken target does.
    with pytest.raises(ServerError) as info:
        start_server("starlette", stack=("no-such-middleware",))
    message = str(info.value)
    assert "starlette exited with code" in message
    assert "no-such-middleware" in message  # the tail of the server's stderr
    (server,) = seen
    assert not server.alive()
    assert group_members(server.pid) == []


def test_port_in_use_is_a_clear_error() -> None:
    with running("raw-wsgi") as server, pytest.raises(ServerError, match="cannot bind"):
        start_server("raw-wsgi", ServeSettings(port=server.port))


def test_pinned_server_runs_on_its_cpus() -> None:
    cpus = (sorted(os.sched_getaffinity(0))[0],)
    with running("raw-asgi", ServeSettings(cpus=cpus)) as server:
        for proc in server.processes():
            assert tuple(proc.cpu_affinity()) == cpus


def test_unknown_target_is_a_usage_error_listing_valid_names() -> None:
    result = CliRunner().invoke(main, ["serve", "-t", "rails"])
    assert result.exit_code == 2
    assert "unknown target 'rails'" in result.output
    valid = (
        "raw-wsgi, flask, raw-asgi, starlette, fastapi, raw-aiohttp, aiohttp, django, django-asgi, "
        "ceiling"
    )
    assert valid in result.output


def test_worker_class_is_checked() -> None:
    result = CliRunner().invoke(main, ["serve", "-t", "starlette", "--worker-class", "gthread"])
    assert result.exit_code == 2
    assert "a worker class applies to WSGI targets only" in result.output


def test_targets_lists_the_table() -> None:
    result = CliRunner().invoke(main, ["targets"])
    assert result.exit_code == 0
    for name in ("raw-wsgi", "flask", "starlette", "fastapi", "aiohttp", "ceiling", "dump"):
        assert name in result.output


def _serve(*args: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 20
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"(http://127\.0\.0\.1:\d+)/healthz", line)
        if found:
            return proc, found.group(1), lines
    proc.kill()
    pytest.fail(f"serve printed no URL: {''.join(lines)}")


@pytest.mark.parametrize("target", ["flask", "ceiling"])
def test_serve_port_0_then_ctrl_c_leaves_nothing(target: str) -> None:
    proc, url, lines = _serve("-t", target)
    try:
        assert request(url).body == b'{"status":"ok"}'
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
        if target == "flask":
            assert any("no keep-alive" in line for line in lines)  # the sync worker note
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


def test_serve_sigterm_stops_the_server_too() -> None:
    proc, _, _ = _serve("-t", "raw-aiohttp")
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.terminate()
    proc.wait(15)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


NEEDS_A_VARIABLE = """
import os

NEEDED = os.environ["MWBENCH_TEST_NEEDED"]


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": NEEDED.encode()})
"""


def _needs_a_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> Target:
    """A user's app that reads MWBENCH_TEST_NEEDED at import, set here to `value`."""
    (tmp_path / "needs.py").write_text(NEEDS_A_VARIABLE)
    monkeypatch.setenv("MWBENCH_TEST_NEEDED", value)
    return app_target("needs", "asgi", "asgi", app="needs:app", app_dir=str(tmp_path))


def test_an_app_missing_a_variable_under_a_count_is_told_how_to_give_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _needs_a_variable(tmp_path, monkeypatch, "here")
    with running(target, ServeSettings(ready_timeout=30), ready_path="/") as server:
        assert server.alive()  # inheriting, it has the variable
    with pytest.raises(ServerError) as info:
        start_server(target, ServeSettings(inherit_env=False, ready_timeout=30), ready_path="/")
    message = str(info.value)
    assert "exited with code" in message and "MWBENCH_TEST_NEEDED" in message  # its KeyError
    assert "pass one it needs with --pass-env VAR" in message


def test_a_variable_passed_by_name_reaches_a_counted_server_and_only_its_length_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _needs_a_variable(tmp_path, monkeypatch, "s3cr3t-value")
    passed = ServeSettings(passed_env=("MWBENCH_TEST_NEEDED",), ready_timeout=30)
    with running(target, passed.replace(inherit_env=False), ready_path="/") as server:
        assert request(server.url, path="/").body == b"s3cr3t-value"
    asked = CompareRequest(
        targets=["starlette"], sets=[()], measures=["instructions"], serve=passed,
        out_dir=tmp_path / "out",
    )  # fmt: skip
    recorded = plan_compare(asked).settings().to_dict()
    assert recorded["passed_env"] == {"MWBENCH_TEST_NEEDED": 12}
    assert "s3cr3t" not in json.dumps(recorded)


@pytest.mark.parametrize(
    ("given", "said"),
    [("MWBENCH_TEST_NOT_SET", "MWBENCH_TEST_NOT_SET is not set in this environment"),
     ("PATH,1BAD", "not a variable's name: '1BAD'"), (",", "no variable named")],
)  # fmt: skip
def test_a_bad_pass_env_is_one_line(given: str, said: str) -> None:
    result = CliRunner().invoke(main, ["compare", "-t", "starlette", "--pass-env", given])
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output
