"""Servers as an axis: every server of the table started for real, compare across servers through
the CLI, and the one-line errors for a server that cannot serve a target."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.load.wrk import WrkLoad, run_wrk
from harness.machine.cpus import plan
from harness.machine.environment import PACKAGES
from harness.measures.server_cpu import cpu_probe
from harness.serving.apps import describe_app, target_for
from harness.serving.servers import bind_socket, running, start_server
from harness.serving.settings import ServeSettings
from harness.serving.userapp.spec import AppSpec
from targets.server_table import SERVERS, servers_for
from targets.table import TARGETS
from tests.conftest import group_members, listening_addresses, request
from tests.test_servers import _serve

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["-c", "16", "--duration", "1s", "--warmup", "0", "--no-ceiling", "--no-charts"]

# Every server with a raw target it can serve (granian on both of its interfaces).
SERVED = [
    ("raw-wsgi", "gunicorn-sync"),
    ("raw-wsgi", "gunicorn-gthread"),
    ("raw-asgi", "gunicorn-uvicorn"),
    ("raw-aiohttp", "gunicorn-aiohttp"),
    ("raw-asgi", "uvicorn"),
    ("raw-wsgi", "granian"),
    ("raw-asgi", "granian"),
    ("raw-asgi", "hypercorn"),
    ("ceiling", "standalone"),
]


def test_every_server_is_tested_here() -> None:
    assert {server for _, server in SERVED} == set(SERVERS)


@pytest.mark.parametrize(("target", "server"), SERVED)
def test_each_server_serves_one_pinned_worker_and_stops_cleanly(target: str, server: str) -> None:
    cpus = (sorted(os.sched_getaffinity(0))[0],)
    started = start_server(target, ServeSettings(server=server, cpus=cpus))
    try:
        assert started.port > 0 and listening_addresses(started.port) == {"127.0.0.1"}
        reply = request(started.url)
        assert reply.status == 200 and reply.body == b'{"status":"ok"}'
        assert request(started.url, path="/nope").status == 404
        procs = started.processes()
        assert len(started.worker_pids()) == 1  # one worker, whatever runs it
        for proc in procs:
            assert tuple(proc.cpu_affinity()) == cpus
        assert started.config.serving.name == server
    finally:
        started.stop()
    assert started.stopped_cleanly, started.process.returncode  # uvicorn's -15 included
    assert group_members(started.pid) == []
    assert not any(p.is_running() and p.status() != "zombie" for p in procs)
    # The server's own access log is off: nothing it wrote names the requests.
    assert started.stderr_path is not None
    assert "/healthz" not in started.stderr_path.read_text(errors="replace")
    started.stderr_path.unlink(missing_ok=True)


@pytest.mark.parametrize("server", ["uvicorn", "granian", "hypercorn"])
def test_a_users_app_on_each_new_server(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    target = target_for(describe_app(AppSpec("tests/apps/shop_fastapi.py:app", False, str(ROOT))))
    with running(
        target, ServeSettings(server=server), stack=("PoweredBy",), ready_path="/items/7"
    ) as s:
        answer = request(s.url, path="/items/7")
        assert answer.status == 200 and answer.headers["X-Powered-By"] == "shop"
        assert json.loads(answer.body)["id"] == 7


def test_granians_worker_dies_with_its_supervisor() -> None:
    # granian forks its worker; the launcher re-arms PR_SET_PDEATHSIG in it, so a supervisor
    # killed outright (as by a harness killed outright) takes the worker with it.
    with running("raw-asgi", ServeSettings(server="granian")) as started:
        (worker,) = [psutil.Process(pid) for pid in started.worker_pids()]
        os.kill(started.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs([worker], timeout=10)
        assert alive == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_on_granian_stops_on_ctrl_c_and_sigterm(signum: int) -> None:
    proc, url, lines = _serve("-t", "flask", "--server", "granian")
    try:
        assert request(url).status == 200
        assert any("on granian" in line for line in lines)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2  # granian's supervisor and its worker (taskset execs)
    finally:
        proc.send_signal(signum)
        proc.wait(15)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


def test_cpu_time_is_counted_over_granians_whole_tree(tmp_path: Path) -> None:
    cpus = plan(True)
    with running("raw-wsgi", ServeSettings(server="granian", cpus=cpus.server)) as started:
        supervisor = psutil.Process(started.pid)
        (worker,) = [psutil.Process(pid) for pid in started.worker_pids()]
        assert worker.num_threads() > 1  # Python and Rust (tokio) threads in one process

        def cpu(proc: psutil.Process) -> float:
            times = proc.cpu_times()
            return times.user + times.system

        before = (cpu(supervisor), cpu(worker))
        finish = cpu_probe(started)(16)
        load = run_wrk(
            started.url + "/healthz",
            WrkLoad(connections=16, threads=1, duration=1, timeout=5),
            cpus=cpus.load,
        )
        probed = finish()
        on_supervisor, on_worker = cpu(supervisor) - before[0], cpu(worker) - before[1]
    assert load.is_ok and load.requests > 0
    # The work is in the worker's threads, not in the supervisor the harness started, and the
    # probe counts it: summing only the top process would miss nearly all of it. (The probe's
    # two figures come from one snapshot; the test's own window is wider than the probe's.)
    assert on_worker > on_supervisor
    # psutil counts in 10 ms steps: a tick either way (CI saw 0.99 against 0.9 x 1.10)
    assert probed["server_cpu_s"] >= probed["workers_cpu_s"] > 0.9 * probed["server_cpu_s"] - 0.02
    assert probed["server_cpu_s"] >= on_worker - 0.02  # psutil counts in 10 ms steps


def test_the_listening_socket_has_tcp_nodelay() -> None:
    # uvicorn --fd never sets it on accepted connections; they inherit it from here.
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def test_compare_across_servers_through_the_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["compare", "-t", "starlette", "--server", "uvicorn,granian", "-m", "none", "-r", "1",
         "-d", str(tmp_path), *SHORT],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for label in ("uvicorn:none", "granian:none", "uvicorn:raw-asgi:none", "granian:raw-asgi:none"):
        assert label in result.output
    assert "servers on the raw app, against uvicorn" in result.output
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["servers"] == ["uvicorn", "granian"]
    # Each server's framework is measured against the raw app on the same server.
    for one in data["sets"]:
        assert one["reference"] == f"{one['server']}:raw-asgi:none"
        assert one["peak_qps"] > 0 and one["costs"]["cpu"]["median"] > 0
    assert [b["server"] for b in data["baselines"]] == ["uvicorn", "granian"]
    first, second = data["server_comparison"]
    assert (first["server"], first["reference"]) == ("uvicorn", None)
    assert (second["server"], second["reference"], second["app"]) == (
        "granian",
        "uvicorn",
        "raw-asgi",
    )
    assert second["differences"]["cpu"] is not None and second["qps_ratio"] > 0
    assert "granian" in data["environment"]["packages"]
    assert (tmp_path / "granian_starlette_none.json").exists()  # file names keep servers apart
    md = (tmp_path / "compare.md").read_text()
    assert "# compare: starlette on uvicorn, granian" in md and "| granian | raw-asgi |" in md


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "-t", "starlette", "--server", "gunicorn-sync"],
         "gunicorn-sync cannot serve starlette (ASGI); valid for ASGI: gunicorn-uvicorn, "
         "uvicorn, granian, hypercorn"),
        (["compare", "-t", "flask", "--server", "granian,uvicorn"],
         "uvicorn cannot serve flask (WSGI); valid for WSGI: gunicorn-sync, gunicorn-gthread, "
         "granian"),
        (["profile", "-t", "raw-aiohttp", "--server", "granian"],
         "valid for aiohttp: gunicorn-aiohttp"),
        (["compare", "-t", "raw-asgi", "--server", "nginx"],
         "unknown server 'nginx'; valid: gunicorn-sync, gunicorn-gthread"),
        (["serve", "-t", "flask", "--server", "granian", "--worker-class", "gthread"],
         "--worker-class gthread means --server gunicorn-gthread"),
        (["compare", "--app", "tests/apps/shop_fastapi.py:app", "--server", "gunicorn-gthread"],
         "cannot serve shop_fastapi (ASGI)"),
    ],
)  # fmt: skip
def test_a_server_that_cannot_serve_is_a_usage_error(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize("server", ["uvicorn", "granian", "hypercorn"])
def test_the_new_servers_refuse_more_workers(server: str) -> None:
    result = CliRunner().invoke(main, ["serve", "-t", "raw-asgi", "--server", server, "-w", "2"])
    assert result.exit_code == 2  # a usage error, in one line
    (line,) = result.output.strip().splitlines()
    assert f"--workers must be 1: {server} runs raw-asgi with one worker" in line


def test_worker_class_and_server_name_one_choice() -> None:
    flask = TARGETS["flask"]
    assert flask.server_for().name == "gunicorn-sync"
    gthread = SERVERS["gunicorn-gthread"]
    assert flask.server_for(worker_class="gthread") == flask.server_for(gthread)
    assert flask.server_for(gthread, "gthread").worker_class == "gthread"
    with pytest.raises(ValueError, match="means server gunicorn-gthread, not gunicorn-sync"):
        flask.server_for(SERVERS["gunicorn-sync"], "gthread")
    with pytest.raises(ValueError, match="applies to WSGI targets only"):
        TARGETS["starlette"].server_for(worker_class="gthread")


def test_the_table_is_the_one_source() -> None:
    for target in TARGETS.values():
        assert target.server_for().serves(target.interface)  # every default can serve it
    for server in SERVERS.values():
        assert set(server.packages) <= set(PACKAGES)  # its versions are recorded
        assert server.interfaces and all(servers_for(i) for i in server.interfaces)
    result = CliRunner().invoke(main, ["targets"])
    assert result.exit_code == 0
    assert all(name in result.output for name in SERVERS)
