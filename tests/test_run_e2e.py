"""`harness run` with the real wrk against real targets on loopback, about a second per level."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.load.datfile import load_dat
from harness.load.sweep import sweep
from harness.serving.servers import running, start_server

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
        assert 0.9 <= level["duration_s"] <= 1.5
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
            url=f"{server.url}/healthz", name="api", out_dir=tmp_path, levels=[16],
            duration=1, timeout=2, warmup=0, progress=False,
            meta={"target": "ceiling", "workers": 1},
        )  # fmt: skip
    assert result.peak is not None and result.peak.concurrency == 16
    assert result.charts == []
    data = json.loads(result.json_path.read_text())
    assert data["meta"] == {"target": "ceiling", "workers": 1}
    assert data["environment"]["wrk_version"].startswith("wrk ")


def _kill_in_second_level(dat: Path, server_pid: int, stop: threading.Event) -> None:
    """SIGKILL the whole server 1 s into the second level (2 s long): once the first level's row
    is in the .dat, wrk is at the second one."""
    deadline = time.monotonic() + 30
    while not stop.is_set() and time.monotonic() < deadline:
        if dat.exists() and dat.read_text().count("\n") >= 1:
            if not stop.wait(1.0):
                os.killpg(server_pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def test_a_server_dying_mid_level_keeps_every_finished_level(tmp_path: Path) -> None:
    out = tmp_path / "out"
    server = start_server("raw-asgi")
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_in_second_level, args=(out / "die.dat", server.pid, stop)
    )
    killer.start()
    try:
        result = CliRunner().invoke(
            main,
            ["run", f"{server.url}/healthz", "-n", "die", "-d", str(out), "-c", "8,16,32",
             "--duration", "2s", "--warmup", "0", "--timeout", "2s", "--no-charts"],
        )  # fmt: skip
    finally:
        stop.set()
        killer.join()
        server.stop()
    assert result.exit_code == 0, result.output  # c=8 was measured
    levels = {lv["concurrency"]: lv for lv in json.loads((out / "die.json").read_text())["levels"]}
    assert levels[8]["status"] == "ok" and levels[8]["success_pct"] == 100.0
    assert "socket errors" in levels[16]["reason"] and levels[16]["success_pct"] < 100.0
    assert levels[32]["status"] == "failed" and "Connection refused" in levels[32]["reason"]
    assert [row.concurrency for row in load_dat(out / "die.dat")] == [8, 16]
    assert "it stopped during c=16" in result.output
    assert [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"] == []
