"""`harness profile` for real: a server, wrk and py-spy, and nothing left behind however it ends."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.profile.pyspy import ENV_PY_SPY, resolve_py_spy
from harness.serving.servers import RunningServer
from tests.conftest import Trigger

ROOT = Path(__file__).resolve().parents[1]
# What py-spy 0.4.3 prints, on stderr with exit code 1, when it may not ptrace the target
# (recorded by running it as `nobody` against a root process).
PERMISSION_DENIED = (
    "Permission Denied: Try running again with elevated permissions by going "
    "'sudo env \"PATH=$PATH\" !!'"
)


def _children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"]


def _sampling_under_load(parent: int | None = None) -> bool:
    """py-spy's `record` and wrk both run, below `parent` (default: this process)."""
    try:
        below = psutil.Process(parent).children(recursive=True)
        lines = " ".join(" ".join(p.cmdline()) for p in below if p.is_running())
    except psutil.NoSuchProcess:  # one ended while we looked
        return False
    return "record" in lines and "wrk" in lines


def test_unknown_target_or_middleware_is_a_usage_error_listing_valid_names() -> None:
    result = CliRunner().invoke(main, ["profile", "-t", "rails"])
    assert result.exit_code == 2
    assert "unknown target 'rails'" in result.output
    assert "flask" in result.output and "starlette" in result.output
    result = CliRunner().invoke(main, ["profile", "-t", "flask", "-m", "dump+gzip"])
    assert result.exit_code == 2
    assert "unknown middleware 'gzip'" in result.output and "request-id" in result.output


def _recorded_py_spy(tmp_path: Path) -> Path:
    fake = tmp_path / "py-spy"
    fake.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{PERMISSION_DENIED}\nEOF\nexit 1\n")
    fake.chmod(0o755)
    return fake


def _real_py_spy_as_nobody(tmp_path: Path) -> Path:
    """The real py-spy, run as an unprivileged user against our (root) server: a real EPERM."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to drop privileges")
    wrapper = tmp_path / "py-spy-as-nobody"
    real = resolve_py_spy(None)
    wrapper.write_text(
        f'#!/bin/sh\nexec {setpriv} --reuid=65534 --regid=65534 --clear-groups {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.parametrize("make_py_spy", [_recorded_py_spy, _real_py_spy_as_nobody])
def test_no_ptrace_permission_is_one_line_that_says_how_to_fix_it(
    tmp_path: Path, make_py_spy: Callable[[Path], Path]
) -> None:
    result = CliRunner().invoke(
        main,
        ["profile", "-t", "raw-wsgi", "-m", "none", "--duration", "1", "-d", str(tmp_path)],
        env={ENV_PY_SPY: str(make_py_spy(tmp_path))},
    )
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "py-spy cannot attach to pid" in line and "no ptrace permission" in line
    for fix in ("run as root", "sudo sysctl kernel.yama.ptrace_scope=0", "--cap-add SYS_PTRACE"):
        assert fix in line
    assert "Traceback" not in result.output
    assert _children() == []  # the server was stopped, and no load was ever started


@pytest.mark.slow
def test_flask_with_every_middleware_finds_dump_among_the_top_layers(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["profile", "-t", "flask", "-m", "all", "--duration", "3", "-d", str(tmp_path),
         "--top", "12"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "flat  flat%   sum%     cum   cum%  function" in result.output
    assert "by kind:" in result.output
    data = json.loads((tmp_path / "flask-all.json").read_text())
    # 3 s at 250 Hz of a busy worker is ~750; how many py-spy keeps depends on how busy the
    # machine is, what they show (the shares below) does not.
    assert data["samples"] > 0
    assert len(data["top"]) == 12
    assert data["wrk"]["status"] == "ok" and data["wrk"]["qps"] > 0
    layers = [share["layer"] for share in data["layers"]]
    middlewares = [s for s in data["layers"] if s["kind"] == "middleware"]
    assert layers.index("dump") < 3, data["layers"]
    assert middlewares[0]["layer"] == "dump"
    assert middlewares[0]["pct"] > 3
    assert (tmp_path / "flask-all.collapsed.txt").stat().st_size > 0
    ET.parse(tmp_path / "flask-all.svg")
    assert (tmp_path / "flask-all.server.log").stat().st_size > 0  # dump and logger wrote there
    assert _children() == []


@pytest.mark.slow
def test_ctrl_c_while_sampling_stops_server_wrk_and_py_spy(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "profile", "-t", "starlette", "-m", "none",
         "--duration", "20", "--lead-in", "1", "-d", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        children: list[psutil.Process] = []
        while not _sampling_under_load(proc.pid):
            if time.monotonic() > deadline:
                pytest.fail("py-spy and wrk never ran together")
            time.sleep(0.1)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # It hung once under a loaded CI machine: say where, rather than only that it did.
            where = subprocess.run(
                [resolve_py_spy(None), "dump", "--pid", str(proc.pid)],
                capture_output=True, text=True, timeout=20,
            )  # fmt: skip
            tree = [" ".join(p.cmdline()) for p in psutil.Process(proc.pid).children(True)]
            pytest.fail(f"no exit 30 s after SIGINT; stack:\n{where.stdout}\nchildren: {tree}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            for child in children:  # what a killed harness could not stop
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["server", "worker"])
def test_a_server_dying_mid_profile_is_an_error_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, victim: str
) -> None:
    import harness.experiments.profile.run as profiling

    record = profiling.running
    triggers: list[Trigger] = []

    @contextlib.contextmanager
    def running_then_killed(*args: object, **options: object) -> Iterator[RunningServer]:
        with record(*args, **options) as server:  # type: ignore[arg-type]
            # SIGKILL once py-spy is sampling, with wrk's load on: the whole server, or only
            # the worker py-spy samples (gunicorn then forks a new one).
            pid, kill = (
                (server.pid, os.killpg)
                if victim == "server"
                else (server.worker_pids()[0], os.kill)
            )
            triggers.append(Trigger(_sampling_under_load, lambda: kill(pid, signal.SIGKILL)))
            triggers[-1].start()
            try:
                yield server
            finally:
                triggers[-1].cancel()

    monkeypatch.setattr(profiling, "running", running_then_killed)
    result = CliRunner().invoke(
        main,
        ["profile", "-t", "raw-asgi", "-m", "none", "--duration", "2", "-d", str(tmp_path)],
    )
    assert [t.fired for t in triggers] == [True]
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    said = "raw-asgi exited with code -9" if victim == "server" else "raw-asgi's worker (pid"
    assert said in line and "mid-profile" in line, line
    assert not (tmp_path / "raw-asgi-none.json").exists()  # no profile of a dead server
    assert _children() == []
