"""compare end to end on real servers with short runs, and its failure paths."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

import harness.experiments.compare.round
from harness.cli.main import main
from harness.experiments.compare.contenders import Contender, Entry, link
from harness.experiments.compare.gate import Gate
from harness.experiments.compare.plan import COMPARE_WSGI_WORKER, CompareRequest, plan_compare
from harness.experiments.compare.render import write_report
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.run import compare
from harness.serving.servers import RunningServer
from middleware.stack import ORDER, stack_name
from targets.table import get_target
from tests.conftest import Trigger, pinned, when_loaded
from tests.synthetic import report_of, set_overheads, spread

SHORT = {**pinned(levels=(16,), duration=1.0, warmup=0.0), "ceiling": False}


def _left_running(servers: list[RunningServer]) -> list[int]:
    """Processes still alive in the process groups of the servers a test started."""
    left = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) in {s.pid for s in servers} and proc.status() != "zombie":
                left.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return left


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[RunningServer]:
    """Every server compare starts in this test (wrapping whatever start_server is then)."""
    servers: list[RunningServer] = []
    inner = harness.experiments.compare.round.start_server

    def recording(target: object, *args: object, **options: object) -> RunningServer:
        server = inner(target, *args, **options)  # type: ignore[arg-type]
        servers.append(server)
        return server

    monkeypatch.setattr(harness.experiments.compare.round, "start_server", recording)
    return servers


@pytest.mark.parametrize("target", ["flask", "starlette"])
def test_none_and_all_on_real_servers(
    target: str, tmp_path: Path, started: list[RunningServer]
) -> None:
    report = compare(targets=[target], sets=[(), ORDER], repeat=2, out_dir=tmp_path, **SHORT)
    write_report(report)
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["target"] == target
    assert data["baseline"] == ("raw-wsgi" if target == "flask" else "raw-asgi")
    assert "python" in json.dumps(data["environment"]).lower()  # versions, CPUs, system state
    names = [s["name"] for s in data["sets"]]
    assert names == ["none", "all"]
    none, full = data["sets"]
    assert none["middlewares"] == [] and full["middlewares"] == list(ORDER)
    for one in data["sets"]:
        assert one["peak_qps"] > 0
        assert [r["status"] for r in one["rounds"]] == ["ok", "ok"]
    # The full stack (with dump's pretty JSON) costs server CPU per request...
    assert full["overhead_us_per_request"] > 0
    if target == "starlette":
        # ...and, on an event loop that saturates its core, QPS too. (gunicorn's sync worker
        # waits on a TCP handshake per request, so its QPS is not a CPU measure.)
        assert full["overheads"]["qps"]["median"] > 0
    assert full["reference"] == "none"
    # ...and `none` is the framework against its raw baseline.
    assert none["reference"].startswith(data["baseline"])
    assert 0 < none["pct_of_baseline"] < 100
    assert full["pct_of_baseline"] < none["pct_of_baseline"]
    ci = full["overheads"]["cpu"]
    assert ci["low"] <= ci["high"] and ci["n"] == 2
    assert ci["median"] == full["overhead_us_per_request"]
    # plain data that loads back: every round's values stored, the estimates computed again
    assert (data["schema"], data["version"]) == ("mwbench.compare", 2)
    assert [m["name"] for m in data["measures"]] == ["cpu", "qps"]
    assert all(set(r["values"]) == {"cpu", "qps"} for one in data["sets"] for r in one["rounds"])
    loaded = CompareReport.load(tmp_path / "compare.json")
    assert [e.label for e in loaded.entries] == [e.label for e in report.entries]
    for mine, again in zip(report.entries, loaded.entries, strict=True):
        assert again.overhead("cpu") == mine.overhead("cpu")
        assert again.cost("qps") == mine.cost("qps") and again.peak_qps == mine.peak_qps
        assert (again.reference.label if again.reference else None) == (
            mine.reference.label if mine.reference else None
        )
    # every sweep's files, per set and round, plus the report
    for stem in (f"{target}_none_r1", f"{target}_all_r2"):
        assert (tmp_path / f"{stem}.dat").read_text().strip()
        assert (tmp_path / f"{stem}.json").exists()
    for name in ("compare.md", "overhead.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| all |" in (tmp_path / "compare.md").read_text()
    # written atomically, with the permissions of any file the user writes (as the .dat's)
    mode = (tmp_path / f"{target}_none_r1.dat").stat().st_mode & 0o777
    for name in ("compare.json", "compare.md", "overhead.png", f"{target}_none_r1.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
    assert report.missing == []
    assert len(started) == 6 and _left_running(started) == []


def test_wrong_answers_are_never_timed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[RunningServer]
) -> None:
    # The server is started without the stack the validator expects: its answers lack the
    # secure headers, so the set must fail validation rather than produce a timing.
    record = harness.experiments.compare.round.start_server

    def start_without_middlewares(
        target: object, *args: object, **options: object
    ) -> RunningServer:
        options["stack"] = ()
        return record(target, *args, **options)

    monkeypatch.setattr(
        harness.experiments.compare.round, "start_server", start_without_middlewares
    )
    report = compare(
        targets=["raw-asgi"],
        sets=[("secure",)],
        baseline=False,
        out_dir=tmp_path,
        repeat=2,
        **SHORT,
    )
    write_report(report, charts=False)
    entry = report.entries[0]
    assert [r.status for r in entry.rounds] == ["failed", "failed"]
    assert "secure is in the stack but the answer has no X-Frame-Options" in entry.rounds[0].reason
    assert entry.peak_qps is None
    assert not list(tmp_path.glob("raw-asgi_secure*.dat"))  # never swept
    assert "Missing: secure round 1" in (tmp_path / "compare.md").read_text()
    assert len(started) == 1 and _left_running(started) == []  # round 2 never started one


def test_gate_fails_the_command_on_the_costly_set_only(tmp_path: Path) -> None:
    """Both ways in one run: spin:2ms burns 2 ms of CPU a request and fails a 1 ms gate;
    secure+nocache, tens of µs, passes it and is not named."""
    result = CliRunner().invoke(main, [
        "compare", "-t", "raw-asgi", "-m", "none,secure+nocache,spin:2ms", "--no-baseline",
        "-c", "16", "--duration", "1s", "--warmup", "0", "--no-ceiling", "--no-charts",
        "--repeat", "1", "--max-overhead-us", "1000", "-d", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 1, result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert error.startswith("Error: overhead above --max-overhead-us: spin:2ms: "), error
    assert "secure+nocache" not in error, error
    failures = json.loads((tmp_path / "compare.json").read_text())["gate_failures"]
    assert [f.rsplit(": ", 1)[0] for f in failures] == ["spin:2ms"], failures


def test_a_server_killed_mid_sweep_is_reported_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[RunningServer]
) -> None:
    record = harness.experiments.compare.round.start_server
    triggers: list[Trigger] = []

    def start_then_kill(target: object, *args: object, **options: object) -> RunningServer:
        server = record(target, *args, **options)
        # SIGKILL the gunicorn master once wrk's 8 connections are open, so inside the one
        # level whenever that is: its worker is orphaned.
        triggers.append(when_loaded(server.port, 8, lambda: os.kill(server.pid, signal.SIGKILL)))
        return server

    monkeypatch.setattr(harness.experiments.compare.round, "start_server", start_then_kill)
    report = compare(
        targets=["raw-wsgi"],
        sets=[()],
        baseline=False,
        out_dir=tmp_path,
        **pinned(levels=(8,), duration=2.0, warmup=0.0),
        ceiling=False,
    )
    (trigger,) = triggers
    trigger.cancel()
    assert trigger.fired
    (only,) = report.entries[0].rounds
    assert only.status == "failed"
    assert "mid-sweep" in only.reason
    assert report.missing and "none round 1: failed" in report.missing[0]
    assert (tmp_path / "raw-wsgi_none.json").exists()  # what was measured is kept
    assert len(started) == 1 and _left_running(started) == []


def test_the_gate_flags_only_sets_above_it() -> None:
    starlette, raw = get_target("starlette"), get_target("raw-asgi")
    entries = link(
        [
            Entry(Contender(starlette, stack, "set"), stack_name(stack), [])
            for stack in ((), ("logger",), ("dump",))
        ]
        + [Entry(Contender(raw, (), "baseline"), "raw-asgi:none", [])]
    )
    # none: the framework's 30 µs over raw-asgi, never gated; logger +10 µs; dump not measured.
    set_overheads(entries, {"none": spread(30.0, 5.0, 3), "logger": spread(10.0, 2.0, 3)})
    entries[2].rounds = []
    report = report_of(entries)
    assert report.gate_failures == []  # no gate
    report.gate = Gate(20.0)
    assert report.gate_failures == []
    report.gate = Gate(5.0)
    assert report.gate_failures == ["logger: 10.0 µs/request > 5 µs"]
    # as a share of the reference's cost (none: 130 µs): +10 is 7.7%
    report.gate = Gate(0.05, of_reference=True)
    assert report.gate_failures == ["logger: +10.0 (+7.7%) µs/request > +5%"]
    report.gate = Gate(0.10, of_reference=True)
    assert report.gate_failures == []


def test_unknown_names_are_usage_errors() -> None:
    runner = CliRunner()
    bad_target = runner.invoke(main, ["compare", "-t", "flask,rails"])
    assert bad_target.exit_code == 2
    assert "unknown target 'rails'" in bad_target.output and "raw-wsgi" in bad_target.output
    bad_set = runner.invoke(main, ["compare", "-t", "flask", "-m", "none,request-id+gzip"])
    assert bad_set.exit_code == 2
    assert "unknown middleware 'gzip'" in bad_set.output and "request-id" in bad_set.output


def test_bad_settings_fail_before_any_server_starts(
    tmp_path: Path, started: list[RunningServer]
) -> None:
    result = CliRunner().invoke(
        main, ["compare", "-t", "flask", "--wrk", "/nonexistent/wrk", "-d", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "wrk" in result.output
    assert started == []


def _help_default(command: str, option: str) -> str:
    text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
    after = text[text.index(option) :]
    return after[after.index("[default: ") + len("[default: ") :].split("]")[0]


@pytest.mark.parametrize(
    ("command", "wsgi_worker"),
    [("compare", COMPARE_WSGI_WORKER), ("calibrate", COMPARE_WSGI_WORKER), ("serve", "sync"),
     ("profile", "sync")],
)  # fmt: skip
def test_help_says_the_worker_each_command_really_uses(
    command: str, wsgi_worker: str, tmp_path: Path
) -> None:
    # What a WSGI target runs on when neither --worker-class nor --server says: compare (and
    # calibrate, which runs compare) times it on gthread, the others start it on sync.
    flask = Contender(get_target("flask"), (), "set")
    plan = plan_compare(CompareRequest(targets=["flask"], sets=[()], out_dir=tmp_path))
    used = plan.worker_class_for(flask) if command in ("compare", "calibrate") else None
    assert (used or get_target("flask").server_for(None, None).worker_class) == wsgi_worker
    assert _help_default(command, "--worker-class") == wsgi_worker
