"""`--measure instructions`: real servers under real Valgrind, short windows; what it counts,
how steady it is, calibration with work:N, and that nothing of valgrind is left behind."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.compare.render import write_report
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.run import compare
from harness.load.settings import LoadSettings
from harness.measures import slow_clock
from harness.measures.instructions import parse_perf_csv, pmu_problem
from tests.conftest import pinned

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _valgrind_left(tmp_path: Path) -> list[str]:
    """Servers under callgrind that this test started, still running: this process's
    descendants, and any process whose command line holds the test's own tmp_path (a server
    orphaned by a killed harness is no one's child; its --callgrind-out-file is in tmp_path).
    Not a scan for every valgrind of the machine, where others may run."""
    found = {}
    mine = {proc.pid for proc in psutil.Process().children(recursive=True)}
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if "--tool=callgrind" in line and (proc.pid in mine or str(tmp_path) in line):
            found[proc.pid] = line[:120]
    return list(found.values())


def _pipes_of(pids: Iterable[int], where: str = "/tmp") -> list[str]:
    """valgrind's gdbserver pipes (WHERE/vgdb-pipe-...-PID-by-USER-on-HOST) of these
    processes, once gone: the ones this test started, not another run's stale ones."""
    return sorted(
        pipe
        for pid in pids
        if not psutil.pid_exists(pid)
        for pipe in glob.glob(f"{where}/vgdb-pipe-*-{pid}-by-*")
    )


def _served_by(data: dict[str, Any]) -> dict[int, int]:
    """Each round's serving processes, from its sweep file: pid -> its window's instructions."""
    pids = {}
    for entry in [*data["sets"], *data["baselines"]]:
        for one in entry["rounds"]:
            window = json.loads(Path(one["files"]).read_text())["levels"][-1]
            pids.update({int(k): v for k, v in window["extra"]["instructions_by_pid"].items()})
    return pids


def test_calibrate_recovers_work_in_instructions_from_the_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["calibrate", "-t", "raw-asgi", "--measure", "instructions", "--costs", "10000",
         "-r", "2", "-d", str(tmp_path), "--no-charts"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert data["known_cost"] == "work" and data["tolerance"] == 0.02 and data["passed"]
    per_turn = data["settings"]["instructions_per_turn"]
    assert 50 < per_turn < 500
    # One cost: every contender is a server under valgrind, the slowest of this suite (the
    # spread over several costs is bench's, docs/instructions.md).
    (cost,) = data["costs"]
    assert cost["known"] == 10_000 * per_turn
    assert abs(cost["instructions"]["error_pct"]) < 2, cost  # within 2% of N x a turn's count
    assert "work:N's known cost: N × " in result.output


def test_micro_counts_instructions_in_process(tmp_path: Path) -> None:
    out = tmp_path / "micro.json"
    result = CliRunner().invoke(
        main,
        ["micro", "-t", "raw-wsgi", "-m", "none,work:2000,request-id", "--clock", "instructions",
         "-r", "2", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["unit"] == "instructions_per_request"
    (one,) = data["targets"]
    work = next(s for s in one["sets"] if s["name"] == "work:2000")
    assert work["overhead_us"]["significant"] and data["spin_checks"][0]["passed"]
    values = next(s for s in one["sets"] if s["name"] == "none")["values_us"]
    assert abs(values[0] - values[1]) <= 0.001 * values[0]  # deterministic: a count, not a time


def _start_compare(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "compare", "-t", "raw-asgi", "-m", "none",
         "--measure", "instructions", "-r", "5", "--no-charts", "-d", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _line(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:  # gone, or a zombie
        return ""


def _answering(proc: psutil.Process) -> bool:
    """`proc` holds an accepted connection: it is up, and loaded (its listening socket it has
    from birth, inherited)."""
    try:
        return any(c.status == psutil.CONN_ESTABLISHED for c in proc.net_connections("tcp"))
    except psutil.Error:
        return False


def _wait_for_valgrind(parent: int) -> list[psutil.Process]:
    """The harness's processes once a server under valgrind has a connection (its checks, or
    wrk's warm-up): the signal lands in a round with a server up and loaded, a state observed,
    not a moment a fixed sleep guessed."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        below = psutil.Process(parent).children(recursive=True)
        if any("valgrind" in _line(p) and _answering(p) for p in below):
            return psutil.Process(parent).children(recursive=True)
        time.sleep(0.05)
    pytest.fail("no server under valgrind started")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_harness_stopped_or_killed_takes_its_valgrind_servers_with_it(
    how: signal.Signals, tmp_path: Path
) -> None:
    harness = _start_compare(tmp_path)
    try:
        children = _wait_for_valgrind(harness.pid)
        # a server's reaper is told the harness's scratch directory (log links, stderr files)
        scratch = {Path(_line(p).split()[-1]) for p in children if " -I -S -c " in _line(p)}
        assert len(scratch) == 1 and all(one.is_dir() for one in scratch), scratch
        harness.send_signal(how)
        harness.wait(60)
    finally:
        if harness.poll() is None:
            harness.kill()
    if how == signal.SIGINT:
        assert harness.returncode == 130
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [] and _valgrind_left(tmp_path) == []
    assert not any(one.exists() for one in scratch)  # by the exit hook, or by the reaper
    # Not in /tmp: beside the dumps, removed on a stop; a server killed outright (its group
    # killed by the reaper of a harness killed outright) cannot remove its own.
    pids = [c.pid for c in children]
    assert _pipes_of(pids) == []
    if how == signal.SIGINT:
        assert _pipes_of(pids, str(tmp_path / "callgrind")) == []


STANDIN_PERF = Path(__file__).parent / "fixtures" / "perf" / "perf.py"
TIME_PART = "instructions.time_part"


def _standin_perf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: str) -> Path:
    """$HARNESS_PERF set to the stand-in perf, counting `count`; the log of its calls."""
    perf = tmp_path / "perf"
    perf.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN_PERF}" "$@"\n')
    perf.chmod(0o755)
    log = tmp_path / "perf.log"
    monkeypatch.setenv("HARNESS_PERF", str(perf))
    monkeypatch.setenv("STANDIN_PERF_COUNT", count)
    monkeypatch.setenv("STANDIN_PERF_LOG", str(log))
    return log


def test_without_the_cpu_counter_instructions_perf_is_refused_before_any_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # perf as it answers on this VM (no PMU): it exits 0 and says the event is not supported
    log = _standin_perf(tmp_path, monkeypatch, "<not supported>")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "--measure",
                                       "instructions-perf", "-d", str(out)])  # fmt: skip
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "instructions-perf needs the CPU's counters" in line
    assert "--measure instructions counts them under callgrind" in line
    assert "perf stat cannot count instructions:u here (<not supported>" in line
    calls = [json.loads(one) for one in log.read_text().splitlines()]
    assert [c["args"] for c in calls] == [["stat", "-x,", "-e", "instructions:u", "true"]]
    assert not out.exists() or not list(out.iterdir()), "nothing was measured"
    monkeypatch.setenv("HARNESS_PERF", str(tmp_path / "no-perf"))
    assert (
        pmu_problem()
        == f"$HARNESS_PERF is not a perf that can be run ({str(tmp_path / 'no-perf')!r})"
    )


def test_this_hosts_perf_is_refused_or_offered() -> None:
    problem = pmu_problem()  # decided before anything runs
    if problem is None:
        pytest.skip("this host has a PMU: instructions-perf is usable")
    result = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "--measure",
                                       "instructions-perf"])  # fmt: skip
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert f"instructions-perf needs the CPU's counters, and {problem}" in line


def test_instructions_perf_counts_the_serving_process_over_its_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The measuring code of instructions-perf, through a stand-in perf that counts 42,000,000
    instructions in whatever window it is given: attached to the server's worker for the
    window, stopped with SIGINT (perf writes its counts then, and only then), read, and
    divided by the window's requests."""
    log = _standin_perf(tmp_path, monkeypatch, "42000000")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "compare", "-t", "raw-asgi", "-m", "none,secure", "--measure", "instructions-perf",
        "--repeat", "1", "--no-baseline", "--no-ceiling", "--no-charts", "-d", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "compare.json").read_text())
    assert data["measures"][0]["name"] == "instructions-perf"
    requests = data["settings"]["requests"]
    for entry in data["sets"]:
        (one,) = entry["rounds"]
        assert one["status"] == "ok", one
        window = json.loads(Path(one["files"]).read_text())["levels"][-1]
        assert window["requests"] == requests and window["extra"]["instructions"] == 42_000_000
        assert one["values"]["instructions-perf"] == pytest.approx(42_000_000 / requests)
    calls = [json.loads(one) for one in log.read_text().splitlines()]
    assert calls[0]["args"] == ["stat", "-x,", "-e", "instructions:u", "true"]  # the check
    windows = [c for c in calls if "-o" in c["args"]]
    assert len(windows) == 2, calls  # one window a round, none for the warm-up
    for call in windows:
        assert call["args"][:4] == ["stat", "-x,", "-e", "instructions:u"]
        # attached to the serving process, a server of this run
        (cmdline,) = call["pids"].values()
        assert "uvicorn" in cmdline or "targets" in cmdline, cmdline
        assert not Path(call["args"][call["args"].index("-o") + 1]).exists()  # read, removed


def test_perf_stat_output_is_read() -> None:
    # `perf stat -x, -e instructions:u` as it prints with a PMU, and without one (this VM)
    assert parse_perf_csv("1234567,,instructions:u,2000000,100.00,,\n") == 1234567
    assert parse_perf_csv("<not supported>,,instructions:u,0,100.00,,\n") is None
    assert parse_perf_csv("") is None


def test_without_valgrind_it_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("wrk", "taskset", "setpriv"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            os.symlink(found, bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "--measure", "instructions",
                                       "-d", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "valgrind (with callgrind_control) is not installed: make setup installs" in line


def test_without_libfaketime_it_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(slow_clock, "LIBRARY_GLOBS", (str(tmp_path / "libfaketime.so.1"),))
    result = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "--measure", "instructions",
                                       "-d", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "libfaketime is not installed" in line and "installs Debian's faketime" in line
    assert not (tmp_path / "out").exists()


# A user's app whose one layer runs `turns` of work:N's loop a request: a code change that makes
# it heavier is what the CI gate is for.
GATED_APP = """
from middleware.spin import worker


class Work:
    def __init__(self, app):
        self.app = app
        self.work = worker({turns})

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.work()
        await self.app(scope, receive, send)


async def plain(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({{"type": "lifespan.startup.complete"}})
        await send({{"type": "lifespan.shutdown.complete"}})
        return
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]}})
    await send({{"type": "http.response.body", "body": b"ok"}})


app = Work(plain)
"""
TURNS = 7_500  # ~1,000,000 instructions a request, ten times the plain app's own
WINDOW = 50  # requests: one more or fewer in a window would move a round's value by 2%


def _counted_compare(tmp_path: Path, name: str, turns: int, baseline: bool = False) -> Path:
    """`compare --app app.py:app -m none,all --measure instructions -r 2` of the app with
    `turns`, as CI runs it (a window of WINDOW requests, to keep it short); its compare.json."""
    from harness.serving.apps import describe_app, target_for
    from harness.serving.userapp.spec import AppSpec

    app_dir = tmp_path / name
    app_dir.mkdir()
    (app_dir / "app.py").write_text(GATED_APP.format(turns=turns))
    info = describe_app(AppSpec(f"{app_dir / 'app.py'}:app", False, str(app_dir)))
    settings = pinned()
    report = compare(
        targets=[target_for(info)], sets=[(), tuple(info.layer_names)],
        measures=("instructions",), repeat=2, baseline=baseline, ceiling=False,
        serve=settings["serve"], load=LoadSettings(cpus=settings["load"].cpus, requests=WINDOW),  # type: ignore[union-attr]
        out_dir=app_dir / "out", echo=lambda line: None,
    )  # fmt: skip
    write_report(report, charts=False)
    return app_dir / "out" / "compare.json"


def test_an_instructions_ci_gate_passes_the_same_code_and_fails_a_heavier_one(
    tmp_path: Path,
) -> None:
    """docs/instructions.md's CI recipe end to end: a baseline compare, the same app compared
    again (passes `diff --max-regression 1%`), and the app with its layer 3% heavier (fails it,
    naming the layer). Each round's window is the requests answered in it: the layer's
    overhead is its loop's known count (turns x a turn's instructions, counted in-process).
    The heavier run has the raw app beside it, for the µs estimate (a set only in B is not
    gated); nothing of valgrind is left."""
    from harness.measures.known import instructions_per_turn

    base = _counted_compare(tmp_path, "base", TURNS)
    again = _counted_compare(tmp_path, "again", TURNS)
    heavier = _counted_compare(tmp_path, "heavier", TURNS * 103 // 100, baseline=True)
    _a_counted_compare_is_steady_estimated_and_leaves_nothing(heavier, tmp_path / "heavier")
    runner = CliRunner()
    same = runner.invoke(main, ["diff", str(base), str(again), "--max-regression", "1%",
                                "-d", str(tmp_path / "d1")])  # fmt: skip
    assert same.exit_code == 0, same.output
    grown = runner.invoke(main, ["diff", str(base), str(heavier), "--max-regression", "1%",
                                 "-d", str(tmp_path / "d2")])  # fmt: skip
    assert grown.exit_code == 1, grown.output
    (error,) = [line for line in grown.output.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: regression over --max-regression: Work: overhead +"), error
    assert "> +1%" in error and "none:" not in error, error
    percent = float(error.split("(+")[1].split("%")[0])
    assert 2.0 < percent < 4.0, error  # 3% more turns: 3% more of the layer's instructions
    # The windows: every round answered WINDOW requests, and the layer's overhead is what
    # WINDOW requests of its loop execute, over WINDOW; a window of one request more or fewer
    # than it divides by would be 2% off.
    known = TURNS * instructions_per_turn()
    for path in (base, again):
        data = json.loads(path.read_text())
        assert data["settings"]["requests"] == WINDOW
        for entry in data["sets"]:
            for one in entry["rounds"]:
                (window,) = json.loads(Path(one["files"]).read_text())["levels"]
                assert (window["concurrency"], window["requests"]) == (1, WINDOW), window
                per_request = window["extra"]["instructions"] / window["requests"]
                # the count per request, with what a time part took off it where one is read
                read = one["values"]["instructions"] + one["values"].get(TIME_PART, 0.0)
                assert read == pytest.approx(per_request, rel=1e-6), (one, window)
        report = CompareReport.load(path)
        work = report.find("Work")
        assert work is not None
        overhead = work.overhead("instructions")
        assert overhead is not None
        assert abs(overhead.median / known - 1) < 0.01, (overhead, known)


def _a_counted_compare_is_steady_estimated_and_leaves_nothing(path: Path, app_dir: Path) -> None:
    report = CompareReport.load(path)
    none, work = report.find("none"), report.find("Work")
    assert none is not None and work is not None and report.missing == []
    values = none.values("instructions")
    extra = work.overhead("instructions")
    assert len(values) == 2 and extra is not None and extra.significant
    # Two rounds, two servers: 0.05-0.23% apart on a quiet machine; 0.58% once when another
    # process shared the server's core (requests batch differently into the event loop's
    # turns, and a turn has its own instructions). A count, not a time: the rounds' spread is
    # a small part of what the layer costs, however busy the machine.
    assert abs(values[0] - values[1]) < extra.median / 100, (values, extra)
    # an estimate in µs, through the raw app's native CPU time measured in the same run
    data = json.loads(path.read_text())
    (native,) = data["settings"]["native_reference"]
    assert native["target"] == "raw-asgi" and native["cpu_us"]["median"] > 0
    assert report.estimated_us(work, extra) is not None
    assert (
        next(s for s in data["sets"] if s["name"] == "Work")["estimated_us"]["overhead"]["median"]
        > 0
    )
    assert (
        "≈ µs (est.) is an estimate, not a measurement" in (path.parent / "compare.md").read_text()
    )
    # nothing of valgrind is left: processes, dumps, the gdbserver pipes of its servers
    assert _valgrind_left(app_dir) == []
    assert not glob.glob(str(path.parent / "callgrind" / "cg.*"))
    served = _served_by(data)
    assert len(served) == 6 and _pipes_of(served) == []  # 3 contenders x 2 rounds, one each
