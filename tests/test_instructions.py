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
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.load.settings import LoadSettings
from harness.measure.compare import compare
from harness.measure.instructions import parse_perf_csv, pmu_problem
from harness.measure.report import CompareReport
from harness.output.compare_report import write_report
from tests.conftest import pinned

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _valgrind_left() -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if "valgrind" in line and "--tool=callgrind" in line:
            found.append(line[:120])
    return found


def _orphan_pipes() -> list[str]:
    """valgrind's gdbserver pipes (/tmp/vgdb-pipe-...-PID-by-USER-on-HOST) of gone processes."""
    found = []
    for pipe in glob.glob("/tmp/vgdb-pipe-*-by-*"):
        pid = int(pipe.rsplit("-by-", 1)[0].rsplit("-", 1)[1])
        if not psutil.pid_exists(pid):
            found.append(pipe)
    return found


def test_a_compare_counts_instructions_steadily_and_leaves_nothing(tmp_path: Path) -> None:
    settings = pinned()
    report = compare(
        targets=["raw-asgi"], sets=[(), ("secure",)], measures=("instructions",), repeat=2,
        serve=settings["serve"], load=LoadSettings(cpus=settings["load"].cpus, requests=300),  # type: ignore[union-attr]
        out_dir=tmp_path, echo=lambda line: None,
    )  # fmt: skip
    write_report(report, charts=False)
    none, secure = report.find("none"), report.find("secure")
    assert none is not None and secure is not None and report.missing == []
    values = none.values("instructions")
    assert len(values) == 2 and 50_000 < values[0] < 500_000
    # Two rounds, two servers: 0.05-0.23% apart on a quiet machine; 0.58% once when another
    # process shared the server's core (requests batch differently into the event loop's
    # turns, and a turn has its own instructions). A count, not a time: within 1%.
    assert abs(values[0] - values[1]) / values[0] < 0.01
    extra = secure.overhead("instructions")
    assert extra is not None and extra.significant and 2_000 < extra.median < 100_000
    # every round is one window of exactly the requests asked, on one connection
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["settings"]["requests"] == 300 and data["measures"][0]["name"] == "instructions"
    assert all(r["peak_level"] == 1 for s in data["sets"] for r in s["rounds"])
    # an estimate in µs, through the raw app's native CPU time measured in the same run
    (native,) = data["settings"]["native_reference"]
    assert native["target"] == "raw-asgi" and native["cpu_us"]["median"] > 0
    assert secure.reference is none and report.estimated_us(secure, extra) is not None
    assert data["sets"][1]["estimated_us"]["overhead"]["median"] > 0
    assert "≈ µs (est.) is an estimate, not a measurement" in (tmp_path / "compare.md").read_text()
    loaded = CompareReport.load(tmp_path / "compare.json")
    assert loaded.find("secure").overhead("instructions") == extra  # type: ignore[union-attr]
    # nothing of valgrind is left: processes, gdbserver pipes, dumps
    assert _valgrind_left() == []
    assert not glob.glob(str(tmp_path / "callgrind" / "cg.*"))
    assert _orphan_pipes() == []


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


def _wait_for_valgrind(parent: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        below = psutil.Process(parent).children(recursive=True)
        if any("valgrind" in _line(p) for p in below):
            time.sleep(1.0)  # it is starting its server under valgrind
            return psutil.Process(parent).children(recursive=True)
        time.sleep(0.1)
    pytest.fail("no server under valgrind started")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_harness_stopped_or_killed_takes_its_valgrind_servers_with_it(
    how: signal.Signals, tmp_path: Path
) -> None:
    harness = _start_compare(tmp_path)
    try:
        children = _wait_for_valgrind(harness.pid)
        harness.send_signal(how)
        harness.wait(60)
    finally:
        if harness.poll() is None:
            harness.kill()
    if how == signal.SIGINT:
        assert harness.returncode == 130
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [] and _valgrind_left() == [] and _orphan_pipes() == []


def test_the_cpu_counter_is_offered_where_there_is_a_pmu_and_refused_here() -> None:
    problem = pmu_problem()
    result = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "--measure",
                                       "instructions-perf"])  # fmt: skip
    if problem is None:  # a host with a PMU: the measure is there to use
        pytest.skip("this host has a PMU: instructions-perf is usable")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "instructions-perf needs the CPU's counters" in line
    assert "--measure instructions counts them under callgrind" in line


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
