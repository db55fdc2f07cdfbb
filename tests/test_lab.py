"""Remote targets, tested honestly on one machine: a server in one network namespace, wrk in
another, joined by a veth pair with addresses from 198.18.0.0/15 (RFC 2544's benchmarking
block), made and removed by the test through harness.machine.lab. Needs root and `ip netns`."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.sweep.plan import check_url
from harness.load.datfile import load_dat
from harness.machine.lab import Lab, LabError, existing_namespaces, lab_down, lab_status, lab_up

ROOT = Path(__file__).resolve().parents[1]


def _unique_lab() -> Lab:
    # Its own namespaces: other test runs, and a user's `harness lab up`, use other names.
    return Lab(name=f"mwt-{os.getpid()}-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("`ip` (iproute2) is not installed")
    probe = _unique_lab()
    made = subprocess.run(["ip", "netns", "add", probe.server_ns], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"`ip netns` is unavailable here: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "delete", probe.server_ns], check=True)
    one = _unique_lab()
    try:
        yield one
    finally:
        lab_down(one)  # also when the test failed; stops anything left inside
        assert not set(one.namespaces) & existing_namespaces("ip")


def _read_until(proc: subprocess.Popen[bytes], pattern: str, timeout: float) -> re.Match[str]:
    assert proc.stdout is not None
    seen = ""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, seen)):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"never printed {pattern!r}; printed:\n{seen}")
            if selector.select(0.5):
                seen += os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
    return found


@pytest.mark.slow
def test_run_allow_remote_measures_a_server_in_another_namespace(lab: Lab, tmp_path: Path) -> None:
    status = lab_up(lab)
    assert status.up and sorted(status.present) == sorted(lab.namespaces)
    assert lab_up(lab).up  # up again: kept as it is
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab.server_ns, sys.executable, "-m", "harness", "serve",
         "-t", "raw-asgi", "--host", lab.server_address, "--port", "0", "--log-output", "null"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        url = _read_until(server, r"http://198\.18\.\d+\.\d+:\d+/healthz", 30).group(0)
        out = tmp_path / "out"
        client = subprocess.run(
            ["ip", "netns", "exec", lab.client_ns, sys.executable, "-m", "harness", "run",
             "--allow-remote", url, "-n", "veth", "-d", str(out), "-c", "8", "--duration", "1s",
             "--warmup", "0", "--timeout", "2s", "--no-charts"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert client.returncode == 0, client.stdout + client.stderr
        first = client.stdout.splitlines()[0]
        assert first.startswith(f"sending load to {lab.server_address}: 1 level of 8 connections")
        (row,) = load_dat(out / "veth.dat")
        assert row.concurrency == 8 and row.success_pct == 100.0 and row.qps and row.qps > 0
        data = json.loads((out / "veth.json").read_text())
        assert data["url"] == url and data["meta"]["allow_remote"] is True
        assert data["levels"][0]["status"] == "ok" and data["levels"][0]["requests"] > 0
        # From the client namespace, loopback is its own: the server is only over the veth.
        local = url.replace(lab.server_address, "127.0.0.1")
        refused = subprocess.run(
            ["ip", "netns", "exec", lab.client_ns, sys.executable, "-m", "harness", "run",
             local, "-d", str(tmp_path / "lo"), "-c", "1", "--duration", "1s", "--warmup", "0",
             "--no-charts"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.returncode == 1 and "Connection refused" in refused.stdout
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_lab_commands_up_status_down(lab: Lab) -> None:
    runner = CliRunner()
    up = runner.invoke(main, ["lab", "up", "--name", lab.name])
    assert up.exit_code == 0, up.output
    assert f"ip netns exec {lab.server_ns} " in up.output
    assert "serve -t starlette --host 198.18.0.2 --port 8000" in up.output
    assert f"ip netns exec {lab.client_ns} " in up.output
    assert "run --allow-remote http://198.18.0.2:8000/healthz" in up.output
    status = runner.invoke(main, ["lab", "status", "--name", lab.name])
    assert status.exit_code == 0 and f"lab {lab.name}: up" in status.output
    assert "198.18.0.2/30" in status.output and "198.18.0.1/30" in status.output
    down = runner.invoke(main, ["lab", "down", "--name", lab.name])
    assert down.exit_code == 0 and f"removed {lab.server_ns} and {lab.client_ns}" in down.output
    again = runner.invoke(main, ["lab", "down", "--name", lab.name])
    assert again.exit_code == 0 and "already down" in again.output  # idempotent
    assert lab_status(lab).present == []


def test_lab_needs_root_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for action in ("up", "down", "status"):
        result = CliRunner().invoke(main, ["lab", action])
        assert result.exit_code == 1
        assert result.output.strip() == (
            "Error: harness lab needs root to create network namespaces: run it with sudo"
        )


@pytest.mark.parametrize(
    ("lab", "message"),
    [
        (Lab(name="Bad Name"), "lab name must be"),
        (Lab(client_address="203.0.113.1", server_address="203.0.113.2"), "198.18.0.0/15"),
    ],
)
def test_bad_lab_settings_are_refused_before_anything_is_made(lab: Lab, message: str) -> None:
    with pytest.raises(LabError, match=re.escape(message)):
        lab_up(lab)


@pytest.mark.parametrize(
    "url", ["http://198.18.0.2:8000/healthz", "http://203.0.113.5:8080/", "http://api.example.com/"]
)
def test_any_host_only_with_allow_remote(url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", url, "-d", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output  # a usage error
    (line,) = result.output.strip().splitlines()
    assert (
        line.startswith("Error: --allow-remote is needed to load ")
        and "not a loopback host" in line
    )
    assert not (tmp_path / "out").exists()
    host = url.split("//")[1].split(":")[0].split("/")[0]
    assert check_url(url, allow_remote=True) == host


def test_allow_remote_says_what_it_will_send_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WRK_PLAN", "*=ceiling_latency")
    fake = ROOT / "tests" / "fixtures" / "wrk" / "fake_wrk.py"
    result = CliRunner().invoke(
        main,
        ["run", "--allow-remote", "http://198.18.0.2:8000/healthz", "-c", "8,32",
         "--duration", "3s", "--warmup", "1s", "--wrk", str(fake), "-d", str(tmp_path),
         "--no-charts"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "sending load to 198.18.0.2: 2 levels of 8 32 connections, 3s each after a 1s warm-up "
        "(7s of load)"
    )
    assert json.loads((tmp_path / "apiserver.json").read_text())["meta"]["allow_remote"] is True
