"""No process outlives the harness: signals it may have inherited as ignored still stop it, and
a harness killed outright (SIGKILL) takes its servers, wrk and py-spy with it. Real processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.machine.lifetime import dies_with_us
from harness.serving.servers import running
from tests.conftest import group_members

ROOT = Path(__file__).resolve().parents[1]
HARNESS = [sys.executable, "-m", "harness"]
URL_RE = re.compile(r"http://127\.0\.0\.1:\d+/healthz")

pytestmark = pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is missing")


def _read_until(proc: subprocess.Popen[bytes], pattern: re.Pattern[str], timeout: float) -> str:
    """What `proc` printed, up to the first match of `pattern`; fails the test at `timeout`."""
    assert proc.stdout is not None
    seen = ""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not pattern.search(seen):
            left = deadline - time.monotonic()
            if left <= 0 or (proc.poll() is not None and not selector.select(0)):
                pytest.fail(f"never printed {pattern.pattern!r}; printed:\n{seen}")
            if selector.select(min(left, 0.5)):
                chunk = os.read(proc.stdout.fileno(), 65536)
                seen += chunk.decode(errors="replace")
    return seen


def _tree(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _wait_for_children(pid: int, wanted: Callable[[str], bool], timeout: float = 30) -> list:
    """The process tree below `pid` once a command line in it satisfies `wanted`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _tree(pid)
        with contextlib.suppress(psutil.NoSuchProcess):
            if wanted(" ".join(" ".join(p.cmdline()) for p in children)):
                return children
        time.sleep(0.1)
    pytest.fail(f"the expected children of {pid} never appeared")


QUIET: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


@contextlib.contextmanager
def _cleanup(procs: list[psutil.Process]) -> Iterator[None]:
    """Whatever the test fails on, nothing it started is left behind."""
    try:
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


@contextlib.contextmanager
def _started(command: list[str], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """A command started for a test, killed at the end whatever the test fails on."""
    proc = subprocess.Popen(command, cwd=ROOT, **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _killed_takes_along(harness: subprocess.Popen[Any], children: list[psutil.Process]) -> None:
    """Killed outright, the harness leaves none of `children` behind."""
    with _cleanup(children):
        harness.kill()
        harness.wait()
        assert _left(children) == []


def _left(children: list[psutil.Process], timeout: float = 10) -> list[str]:
    """The children still running after `timeout` (an upper bound: they go in about 2 s)."""
    _, alive = psutil.wait_procs(children, timeout=timeout)
    return [" ".join(p.cmdline()) for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def test_the_prefix_sets_the_parent_death_signal() -> None:
    command = dies_with_us(["wrk", "-v"], signal.SIGKILL)
    assert Path(command[0]).name == "setpriv" and command[1:] == [
        "--pdeathsig",
        "KILL",
        "wrk",
        "-v",
    ]
    # setpriv really sets it: /proc shows it as the parent-death signal after the exec.
    shown = subprocess.run(
        dies_with_us([sys.executable, "-c", PDEATHSIG], signal.SIGTERM),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout.strip() == str(int(signal.SIGTERM))


PDEATHSIG = (
    "import ctypes; libc = ctypes.CDLL(None); sig = ctypes.c_int(); "
    "libc.prctl(2, ctypes.byref(sig), 0, 0, 0); print(sig.value)"  # PR_GET_PDEATHSIG
)


def test_a_background_job_starts_with_sigint_ignored() -> None:
    """What the next test relies on: bash without job control ignores SIGINT in `cmd &`."""
    shown = subprocess.run(
        ["bash", "-c", "grep SigIgn /proc/self/status & wait"], capture_output=True, text=True
    )
    ignored = int(shown.stdout.split()[1], 16)
    assert ignored & (1 << (signal.SIGINT - 1))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_a_background_serve_and_its_server(sig: signal.Signals) -> None:
    script = (
        f'{" ".join(HARNESS)} serve -t raw-asgi --port 0 --log-output null & echo "pid $!"; wait'
    )
    unbuffered = {**os.environ, "PYTHONUNBUFFERED": "1"}
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    with _started(["bash", "-c", script], env=unbuffered, **output) as shell:
        printed = _read_until(shell, URL_RE, 30)
        harness = int(re.search(r"pid (\d+)", printed).group(1))  # type: ignore[union-attr]
        children = _tree(harness)
        assert any("gunicorn" in " ".join(p.cmdline()) for p in children)
        with _cleanup(children):
            os.kill(harness, sig)
            shell.wait(timeout=30)
            assert not psutil.pid_exists(harness) or psutil.Process(harness).status() == "zombie"
            assert _left(children) == []


@pytest.mark.slow
def test_a_killed_serve_takes_its_server_with_it() -> None:
    command = [*HARNESS, "serve", "-t", "raw-asgi", "--port", "0", "--log-output", "null"]
    unbuffered = {**os.environ, "PYTHONUNBUFFERED": "1"}
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    with _started(command, env=unbuffered, **output) as harness:
        _read_until(harness, URL_RE, 30)
        children = _tree(harness.pid)
        assert len(children) >= 2  # gunicorn's master and its worker
        _killed_takes_along(harness, children)


@pytest.mark.slow
def test_a_killed_run_takes_wrk_with_it(tmp_path: Path) -> None:
    with running("raw-asgi") as server:
        command = [*HARNESS, "run", f"{server.url}/healthz", "-c", "8", "--duration", "20s"]
        command += ["--warmup", "0", "--no-charts", "-d", str(tmp_path)]
        with _started(command, **QUIET) as harness:
            children = _wait_for_children(harness.pid, lambda cmd: "wrk" in cmd and "-c 8" in cmd)
            _killed_takes_along(harness, children)
        assert server.alive()  # the test's own server: not the harness's to take along


@pytest.mark.slow
def test_a_killed_profile_takes_server_wrk_and_py_spy_with_it(tmp_path: Path) -> None:
    command = [*HARNESS, "profile", "-t", "raw-asgi", "-m", "none", "--duration", "20"]
    command += ["--lead-in", "1", "-d", str(tmp_path)]
    with _started(command, **QUIET) as harness:
        children = _wait_for_children(harness.pid, lambda cmd: "record" in cmd and "wrk" in cmd)
        commands = " ".join(" ".join(p.cmdline()) for p in children)
        assert "gunicorn" in commands and "py-spy" in commands
        _killed_takes_along(harness, children)


def test_nohup_keeps_sighup_ignored() -> None:
    code = (
        "import signal; from harness.cli.main import install_signal_handlers; "
        "install_signal_handlers(); print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN, "
        "signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    )
    ignoring = subprocess.run(
        ["nohup", sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert ignoring.stdout.split() == ["True", "True"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_a_stopped_open_model_run_takes_k6_with_it(tmp_path: Path, sig: signal.Signals) -> None:
    """k6 runs in its own session (a Ctrl-C at the terminal reaches the harness only): killed
    outright, the harness takes it along by the parent-death signal; interrupted, it stops it
    and keeps what was measured."""
    with running("raw-asgi") as server:
        command = [*HARNESS, "run", f"{server.url}/healthz", "--rate", "200", "--duration", "20s"]
        command += ["-d", str(tmp_path), "-n", "open"]
        with _started(command, **QUIET) as harness:
            children = _wait_for_children(harness.pid, lambda cmd: "k6 run" in cmd)
            time.sleep(1.5)  # past the warm-up: the measured rate is running
            with _cleanup(children):
                harness.send_signal(sig)
                code = harness.wait(timeout=30)
                assert _left(children) == []
        assert server.alive()
    if sig == signal.SIGINT:
        assert code == 130
        data = json.loads((tmp_path / "open.latency.json").read_text())
        assert data["interrupted"] is True


def _group_with_a_child() -> subprocess.Popen[bytes]:
    """A process group of two: a shell leading its own session and its `sleep`."""
    return subprocess.Popen(
        ["sh", "-c", "sleep 60 & wait"], start_new_session=True, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("holder_ends", ["killed", "released"])
def test_a_group_reaper_kills_the_whole_group_only_when_its_holder_dies(holder_ends: str) -> None:
    group = _group_with_a_child()
    try:
        deadline = time.monotonic() + 5
        while len(group_members(group.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        members = [psutil.Process(pid) for pid in group_members(group.pid)]
        assert len(members) == 2
        # The reaper's holder is a process of its own, so that it can be killed outright.
        release = "r.release(); " if holder_ends == "released" else ""
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import time; from harness.machine.lifetime import GroupReaper; "
             "from harness.machine.scratch import scratch_directory; "
             f"r = GroupReaper({group.pid}); {release}print(scratch_directory(), flush=True); "
             "time.sleep(60)"],
            cwd=ROOT, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert holder.stdout is not None
        scratch = Path(holder.stdout.readline().decode().strip())
        assert scratch.is_dir()
        holder.kill()
        holder.wait()
        _, alive = psutil.wait_procs(members, timeout=5 if holder_ends == "killed" else 1)
        if holder_ends == "killed":
            assert alive == []
            deadline = time.monotonic() + 5  # the reaper removes it once the group is killed
            while scratch.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not scratch.exists()
        else:
            assert len(alive) == 2  # released: the group is the holder's to stop, not the reaper's
            assert scratch.is_dir()  # and so is its directory, which its exit hook removes
            shutil.rmtree(scratch)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group.pid, signal.SIGKILL)
        group.wait()
