"""`harness run` with a recorded wrk (tests/fixtures/wrk/fake_wrk.py): every failure path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from harness.cli.main import main
from harness.load.datfile import load_dat

FAKE_WRK = str(Path(__file__).parent / "fixtures" / "wrk" / "fake_wrk.py")
URL = "http://127.0.0.1:8000/healthz"


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "wrk-calls.log"
    monkeypatch.setenv("FAKE_WRK_LOG", str(path))
    monkeypatch.delenv("HARNESS_WRK", raising=False)
    return path


def calls(log: Path) -> list[list[str]]:
    """The fake wrk's invocations, minus `-v` (the version probe)."""
    if not log.exists():
        return []
    return [line.split() for line in log.read_text().splitlines() if line.split() != ["-v"]]


def run(
    monkeypatch: pytest.MonkeyPatch, out: Path, plan: str, *args: str, wrk: str = FAKE_WRK
) -> Result:
    monkeypatch.setenv("FAKE_WRK_PLAN", plan)
    return CliRunner().invoke(
        main,
        ["run", URL, "-d", str(out), "-n", "job", "--wrk", wrk, "--warmup", "0", *args],
    )


def load(out: Path, name: str = "job") -> dict:
    return json.loads((out / f"{name}.json").read_text())


def test_levels_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    out = tmp_path / "out"
    # Two captures of different speed: the peak is the faster one, whichever level comes first.
    result = run(monkeypatch, out, "8=ceiling_latency,32=flask_latency", "-c", "8,32",
                 "--no-charts")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [row.concurrency for row in load_dat(out / "job.dat")] == [8, 32]
    data = load(out)
    assert data["url"] == URL
    assert data["environment"]["wrk_version"].startswith("wrk 4.1.0 [fake")
    assert data["environment"]["fd_limit"] > 0
    level = data["levels"][0]
    for key in ("command", "threads", "connections", "duration_s", "requests", "qps",
                "latency_avg_ms", "latency_stdev_ms", "latency_max_ms", "p50_ms", "p75_ms",
                "p90_ms", "p99_ms", "errors_connect", "errors_read", "errors_write",
                "errors_timeout", "non2xx3xx", "success_pct", "status", "reason"):  # fmt: skip
        assert key in level
    assert level["command"][-3:] == ["-c", "8", URL]
    assert data["peak"] == {"concurrency": 8, "qps": 162284.84}
    assert "job: " + URL in result.output  # the summary table


def test_failed_level_kept_and_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path
) -> None:
    out = tmp_path / "out"
    plan = "8=ceiling_latency,32=refused,64=flask_timeouts"
    result = run(monkeypatch, out, plan, "-c", "8 32 64", "--no-charts")
    # every level is tried and what was measured kept; the exit says one was not
    assert result.exit_code == 1, result.output
    assert "1 of 3 levels were not measured (c=32: " in result.output
    assert "the 2 measured are kept" in result.output
    levels = {lv["concurrency"]: lv for lv in load(out)["levels"]}
    assert levels[32]["status"] == "failed"
    assert "Connection refused" in levels[32]["reason"]
    assert levels[64]["errors_timeout"] == 7008
    # The .dat holds measured levels only: no `-nan` or zero rows for the failure.
    assert [row.concurrency for row in load_dat(out / "job.dat")] == [8, 64]
    assert "Connection refused" in result.output


@pytest.mark.parametrize(
    ("capture", "reason"),
    [
        ("refused", "Connection refused"),
        ("bad_url", "invalid URL"),
        ("threads_gt_conns", "connections must be >= threads"),
        ("no_answer", "0 requests completed"),
    ],
)
def test_all_failed_exits_nonzero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path, capture: str, reason: str
) -> None:
    out = tmp_path / "out"
    result = run(monkeypatch, out, f"*={capture}", "-c", "8,32", "--no-charts")
    assert result.exit_code == 1
    assert reason in result.output
    assert "every level failed" in result.output
    assert all(lv["status"] == "failed" for lv in load(out)["levels"])
    # Nothing completed: no QPS or latency to write, so no row (never a `-nan` one).
    assert (out / "job.dat").read_text() == ""


def _one_line_error(result: Result, text: str) -> None:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert text in lines[0]


def test_wrk_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    out = tmp_path / "out"
    result = run(monkeypatch, out, "*=ceiling_latency", "-c", "8", wrk=str(tmp_path / "no-wrk"))
    _one_line_error(result, "wrk not found")
    assert not out.exists()


def test_wrk_missing_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path
) -> None:
    monkeypatch.setenv("HARNESS_WRK", str(tmp_path / "no-wrk"))
    result = CliRunner().invoke(main, ["run", URL, "-d", str(tmp_path / "out")])
    _one_line_error(result, "wrk not found")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("not a url", "URL"),
        ("ftp://127.0.0.1/x", "URL"),
        ("http://:80/", "URL"),
        ("http://127.0.0.1:99999/", "URL"),
        ("http://203.0.113.5:8080/healthz", "not a loopback host"),  # load goes to loopback only
        ("http://[2001:db8::1]/", "not a loopback host"),  # IPv6, documentation prefix
        ("http://api.example.com/", "not a loopback host"),
    ],
)
def test_a_url_wrk_may_not_load_is_refused_before_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path, url: str, said: str
) -> None:
    monkeypatch.setenv("FAKE_WRK_PLAN", "*=ceiling_latency")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", url, "-d", str(out), "--wrk", FAKE_WRK])
    _one_line_error(result, said)
    assert calls(log) == [] and not out.exists()


@pytest.mark.parametrize("url", ["http://localhost:1/", "http://127.0.0.2:1/", "http://[::1]:1/"])
def test_loopback_hosts_are_accepted(url: str) -> None:
    from harness.experiments.sweep.plan import check_url

    check_url(url)  # raises SweepError otherwise


def test_unwritable_output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run(monkeypatch, blocker / "sub", "*=ceiling_latency", "-c", "8")
    _one_line_error(result, "cannot write to output directory")
    assert calls(log) == []


def test_level_beyond_fd_limit_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path
) -> None:
    monkeypatch.setattr("harness.experiments.sweep.plan.raise_fd_limit", lambda: 100)
    out = tmp_path / "out"
    result = run(monkeypatch, out, "*=ceiling_latency", "-c", "8,200", "--no-charts")
    assert result.exit_code == 1, result.output
    assert "1 of 2 levels were not measured (c=200: " in result.output
    level = load(out)["levels"][1]
    assert level["status"] == "skipped"
    assert "file descriptors" in level["reason"] and "limit is 100" in level["reason"]
    assert "file descriptors" in result.output
    assert [c[c.index("-c") + 1] for c in calls(log)] == ["8"]


def test_warmup_runs_first_and_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path
) -> None:
    out = tmp_path / "out"
    result = run(monkeypatch, out, "*=ceiling_latency", "-c", "8,32", "--warmup", "1s",
                 "--no-charts")  # fmt: skip
    assert result.exit_code == 0, result.output
    first, *rest = calls(log)
    assert "--latency" not in first and "-d1s" in first
    assert len(rest) == 2
    assert len(load(out)["levels"]) == 2


def test_duration_threads_and_timeout_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path
) -> None:
    out = tmp_path / "out"
    result = run(monkeypatch, out, "*=ceiling_latency", "-c", "1,4", "--duration", "500ms",
                 "--timeout", "1m", "--threads", "3", "--no-charts")  # fmt: skip
    assert result.exit_code == 0, result.output
    one, four = calls(log)
    assert one[:4] == ["-t1", "-d1s", "-T60s", "--latency"]  # threads never above connections
    assert four[0] == "-t3"
    result = run(monkeypatch, out, "*=ceiling_latency", "-c", "8", "--duration", "soon")
    assert result.exit_code == 2 and "not a duration" in result.output


def test_preset_iam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    monkeypatch.setattr("harness.experiments.sweep.plan.raise_fd_limit", lambda: 20000)
    monkeypatch.setattr("harness.experiments.sweep.plan.os.cpu_count", lambda: 2)
    out = tmp_path / "out"
    result = run(monkeypatch, out, "*=ceiling_latency", "--preset", "iam", "--no-charts")
    assert result.exit_code == 1, result.output  # three levels beyond the descriptors
    assert "3 of 10 levels were not measured" in result.output
    levels = {c[c.index("-c") + 1]: c for c in calls(log)}
    assert list(levels) == ["200", "500", "1000", "3000", "5000", "10000", "15000"]
    assert levels["200"][:4] == ["-t6", "-d300s", "-T30s", "--latency"]  # 3 x CPUs
    # 20000 connections need 20000 descriptors plus wrk's own: over a 20000 limit.
    skipped = [lv["concurrency"] for lv in load(out)["levels"] if lv["status"] == "skipped"]
    assert skipped == [20000, 25000, 50000]


def test_interrupt_keeps_levels_and_resume_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path
) -> None:
    out = tmp_path / "out"
    result = run(monkeypatch, out, "8=ceiling_latency,32=interrupt", "-c", "8,32,64",
                 "--no-charts")  # fmt: skip
    assert result.exit_code == 130, result.output
    assert "--resume" in result.output
    assert [row.concurrency for row in load_dat(out / "job.dat")] == [8]
    data = load(out)
    assert data["interrupted"] is True and len(data["levels"]) == 1

    log.unlink()
    result = run(monkeypatch, out, "*=flask_latency", "-c", "8,32,64", "--resume", "--no-charts")
    assert result.exit_code == 0, result.output
    assert [c[c.index("-c") + 1] for c in calls(log)] == ["32", "64"]
    assert [row.concurrency for row in load_dat(out / "job.dat")] == [8, 32, 64]
    data = load(out)
    assert data["interrupted"] is False
    assert data["levels"][0]["qps"] == pytest.approx(162284.84)  # kept from the first run
    assert data["levels"][1]["qps"] == pytest.approx(3335.36)

    monkeypatch.setenv("FAKE_WRK_PLAN", "*=ceiling_latency")
    other = CliRunner().invoke(main, ["run", "http://127.0.0.1:9/x", "-d", str(out), "-n", "job",
                                      "--wrk", FAKE_WRK, "--resume"])  # fmt: skip
    _one_line_error(other, "cannot resume")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_file_gets_the_users_permissions(
    umask: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path
) -> None:
    # NAME.json is replaced atomically through a temporary file, which mkstemp makes 0600: it
    # must end up as any file the user writes does, like the .dat beside it.
    out = tmp_path / "out"
    previous = os.umask(umask)
    try:
        result = run(monkeypatch, out, "*=ceiling_latency", "-c", "8,32")
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert {"job.dat", "job.json", "job_qps_ttlb.png"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o666 & ~umask), modes


def test_charts_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    out = tmp_path / "out"
    result = run(monkeypatch, out, "8=ceiling_latency,32=refused,*=flask_latency", "-c", "8,32,64")
    assert result.exit_code == 1, result.output  # c=32 refused, drawn as such
    for name in ("job_qps_ttlb.png", "job_successrate.png", "job_latency.png"):
        assert (out / name).stat().st_size > 10_000
    assert load(out)["files"]["charts"] == [
        "job_qps_ttlb.png", "job_successrate.png", "job_latency.png",
    ]  # fmt: skip


def test_notes_on_what_the_numbers_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log: Path
) -> None:
    out = tmp_path / "out"
    # ceiling_latency was measured with 64 connections: replayed for c=8 its QPS x latency is
    # 7x the connections; flask_latency (32 conns) replayed for c=200 with 3 threads is 1/7.
    plan = "8=ceiling_latency,200=flask_latency"
    result = run(monkeypatch, out, plan, "-c", "8,200", "--threads", "3", "--no-charts")
    assert result.exit_code == 0, result.output
    assert "exceeds the connections at c=8" in result.output
    assert "well below the connections at c=200" in result.output
    assert "c=200: wrk opened 198 connections (3 threads × 66)" in result.output
