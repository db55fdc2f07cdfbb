"""`harness run` with the real wrk against real targets on loopback, about a second per level."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.sweep.run import sweep
from harness.load.datfile import load_dat
from harness.load.settings import LoadSettings
from harness.load.wrk_output import parse_wrk_output
from harness.serving.servers import running, start_server
from harness.serving.settings import ServeSettings
from tests.conftest import Trigger, established

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]


@pytest.fixture(autouse=True)
def _real_wrk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_WRK", raising=False)


def test_run_against_ceiling(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running("ceiling") as server:
        url = f"{server.url}/healthz"
        result = CliRunner().invoke(
            main,
            ["run", url, "-n", "ceiling", "-d", str(out), "-c", "8,32", "--duration", "1s",
             "--warmup", "1s", "--timeout", "2s"],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = load_dat(out / "ceiling.dat")
    assert [row.concurrency for row in rows] == [8, 32]
    assert all(row.qps and row.qps > 1000 and row.success_pct == 100.0 for row in rows)
    data = json.loads((out / "ceiling.json").read_text())
    for level in data["levels"]:
        assert level["status"] == "ok"
        assert level["p99_ms"] is not None and level["p50_ms"] <= level["p99_ms"]
        assert level["connections"] == level["concurrency"]
        assert "-d1s" in level["command"]  # what the harness asked; wrk's own clock may stall
        assert level["duration_s"] >= 0.9
    for name in ("ceiling_qps_ttlb.png", "ceiling_successrate.png", "ceiling_latency.png"):
        assert (out / name).exists()


def test_real_404_and_refused_levels_fail(tmp_path: Path) -> None:
    with running("ceiling") as server:
        result = CliRunner().invoke(
            main,
            ["run", f"{server.url}/nope", "-n", "nope", "-d", str(tmp_path), "-c", "4",
             "--duration", "1s", "--warmup", "0", "--no-charts"],
        )  # fmt: skip
    assert result.exit_code == 1
    assert "no 2xx/3xx responses" in result.output
    (row,) = load_dat(tmp_path / "nope.dat")  # measured all the same: a row at 0% success
    assert row.concurrency == 4 and row.success_pct == 0.0 and row.qps and row.qps > 0

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        main,
        ["run", f"http://127.0.0.1:{port}/healthz", "-n", "closed", "-d", str(tmp_path),
         "-c", "4", "--duration", "1s", "--warmup", "0", "--no-charts"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Connection refused" in result.output


def test_sweep_api_for_compare(tmp_path: Path) -> None:
    """What compare relies on: quiet, no charts, the peak level and the caller's meta kept."""
    with running("ceiling") as server:
        result = sweep(
            url=f"{server.url}/healthz", name="api", out_dir=tmp_path,
            load=LoadSettings(levels=(16,), duration=1, timeout=2, warmup=0), progress=False,
            meta={"target": "ceiling", "workers": 1},
        )  # fmt: skip
    assert result.peak is not None and result.peak.concurrency == 16
    assert result.charts == []
    data = json.loads(result.json_path.read_text())
    assert data["meta"] == {"target": "ceiling", "workers": 1}
    assert data["environment"]["wrk_version"].startswith("wrk ")


def test_a_server_dying_mid_level_keeps_every_finished_level(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dat = out / "die.dat"
    server = start_server("raw-asgi")
    # SIGKILL the whole server inside the second level: once the first level's row is in the
    # .dat and wrk holds the second level's 16 connections open.
    killer = Trigger(
        lambda: (
            dat.exists() and dat.read_text().count("\n") >= 1 and established(server.port) >= 16
        ),
        lambda: os.killpg(server.pid, signal.SIGKILL),
    ).start()
    try:
        result = CliRunner().invoke(
            main,
            ["run", f"{server.url}/healthz", "-n", "die", "-d", str(out), "-c", "8,16,32",
             "--duration", "2s", "--warmup", "0", "--timeout", "2s", "--no-charts"],
        )  # fmt: skip
    finally:
        killer.cancel()
        server.stop()
    assert killer.fired
    assert result.exit_code == 1, result.output  # c=8 and c=16 were measured and kept
    assert "1 of 3 levels were not measured (c=32: " in result.output
    levels = {lv["concurrency"]: lv for lv in json.loads((out / "die.json").read_text())["levels"]}
    assert levels[8]["status"] == "ok" and levels[8]["success_pct"] == 100.0
    assert "socket errors" in levels[16]["reason"] and levels[16]["success_pct"] < 100.0
    assert levels[32]["status"] == "failed" and "Connection refused" in levels[32]["reason"]
    assert [row.concurrency for row in load_dat(out / "die.dat")] == [8, 16]
    assert "it stopped during c=16" in result.output
    assert [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"] == []


# A wrk that records each call and its output, then is the real one: what the harness ran, and
# what the real wrk said, for the tests below.
LOGGING_WRK = """#!/bin/bash
n=$(ls "$WRK_CALLS" | grep -c '\\.args$')
printf '%s\\n' "$*" > "$WRK_CALLS/$n.args"
{real} "$@" | tee "$WRK_CALLS/$n.out"
exit ${{PIPESTATUS[0]}}
"""


@pytest.fixture
def logging_wrk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    calls = tmp_path / "calls"
    calls.mkdir()
    script = tmp_path / "wrk"
    script.write_text(LOGGING_WRK.format(real=shutil.which("wrk")))
    script.chmod(0o755)
    monkeypatch.setenv("WRK_CALLS", str(calls))
    return str(script), calls


def _runs(calls: Path) -> list[tuple[list[str], str]]:
    """(arguments, output) of each wrk run, in order, the version probe (-v) left out."""
    found = []
    for args in sorted(calls.glob("*.args"), key=lambda p: int(p.stem)):
        argv = args.read_text().split()
        if argv != ["-v"]:
            found.append((argv, args.with_suffix(".out").read_text()))
    return found


def test_the_warm_up_loads_the_server_and_is_discarded(
    tmp_path: Path, logging_wrk: tuple[str, Path]
) -> None:
    wrk, calls = logging_wrk
    with running("ceiling") as server:
        result = sweep(
            url=f"{server.url}/healthz", name="warm", out_dir=tmp_path,
            load=LoadSettings(levels=(8, 16), duration=1, warmup=1, timeout=2, wrk=wrk),
            progress=False,
        )  # fmt: skip
    (warm_args, warm_out), *measured = _runs(calls)
    assert "--latency" not in warm_args and "-d1s" in warm_args
    assert parse_wrk_output(warm_out).requests > 1000  # it really loaded the server
    # Only the measured levels are recorded, each with its own run's requests.
    assert [lv.concurrency for lv in result.levels] == [8, 16]
    assert len(measured) == 2 and all("--latency" in args for args, _ in measured)
    for level, (args, out) in zip(result.levels, measured, strict=True):
        assert args[args.index("-c") + 1] == str(level.concurrency)
        assert level.requests == parse_wrk_output(out).requests
    data = json.loads(result.json_path.read_text())
    assert data["settings"]["warmup_s"] == 1.0 and len(data["levels"]) == 2
    assert [row.concurrency for row in load_dat(result.dat_path)] == [8, 16]


def test_ctrl_c_keeps_the_finished_levels_and_resume_runs_the_rest(
    tmp_path: Path, logging_wrk: tuple[str, Path]
) -> None:
    wrk, calls = logging_wrk
    out = tmp_path / "out"
    dat = out / "job.dat"
    with running("raw-asgi") as server:
        argv = [
            sys.executable, "-m", "harness", "run", f"{server.url}/healthz", "-n", "job",
            "-d", str(out), "-c", "8,16,32", "--duration", "2s", "--warmup", "0",
            "--no-charts", "--wrk", wrk,
        ]  # fmt: skip
        first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Ctrl-C inside the second level: its row is not written, the first one's is.
        interrupt = Trigger(
            lambda: (
                dat.exists() and dat.read_text().count("\n") == 1 and established(server.port) >= 16
            ),
            lambda: first.send_signal(signal.SIGINT),
        ).start()
        try:
            said, _ = first.communicate(timeout=60)
        finally:
            interrupt.cancel()
            if first.poll() is None:
                first.kill()
        assert interrupt.fired and first.returncode == 130, said
        assert "--resume" in said
        kept = load_dat(dat)
        assert [row.concurrency for row in kept] == [8]
        assert json.loads((out / "job.json").read_text())["interrupted"] is True
        before = len(_runs(calls))

        again = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = [args[args.index("-c") + 1] for args, _ in _runs(calls)[before:]]
    assert resumed == ["16", "32"]  # only the levels not yet recorded
    rows = load_dat(dat)
    assert [row.concurrency for row in rows] == [8, 16, 32]
    assert rows[0] == kept[0]  # the first run's level, kept as measured
    data = json.loads((out / "job.json").read_text())
    assert data["interrupted"] is False and [lv["status"] for lv in data["levels"]] == ["ok"] * 3
    assert [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"] == []


def test_a_level_of_a_fixed_count_of_requests_is_exactly_that_many(tmp_path: Path) -> None:
    # The server logs every request it serves: exactly the count, none more in flight when wrk
    # is ended, and the level ends when the last is answered, not at its bound.
    log = tmp_path / "access.log"
    settings = ServeSettings(log_output=f"file:{log}")
    with running("raw-asgi", settings, stack=("logger",)) as server:
        # The readiness check's one request: logged after its answer, so perhaps not yet.
        deadline = time.monotonic() + 5
        while log.read_text().count(" access ") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        ready = log.read_text().count(" access ")
        assert ready == 1
        started = time.monotonic()
        result = sweep(
            url=f"{server.url}/healthz", name="counted", out_dir=tmp_path, progress=False,
            load=LoadSettings(levels=(1,), requests=500, duration=60, warmup=0),
        )  # fmt: skip
        took = time.monotonic() - started
        (level,) = result.levels
        assert level.status == "ok" and level.requests == 500 and level.qps > 0
        assert took < 30  # not the 60 s bound
        deadline = time.monotonic() + 5
        while log.read_text().count(" access ") < ready + 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # a 501st would be logged by now
    assert log.read_text().count(" access ") == ready + 500
    assert not list(tmp_path.glob(".counted*"))  # the marker is gone
    assert json.loads(result.json_path.read_text())["settings"]["requests"] == 500
