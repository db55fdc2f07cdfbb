"""`compare --jobs N`: contenders measured side by side, for measures that count rather than
time; refused, in one line, for any measure that reads time."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import UsageError
from harness.experiments.compare import run as run_module
from harness.experiments.compare.contenders import Contender, Round
from harness.experiments.compare.plan import _jobs
from harness.experiments.compare.rounds import Schedule
from harness.load.validate import ValidationError
from harness.measures.registry import get_measure
from tests.test_precision import _entries


def test_jobs_default_to_the_cores_for_counts_and_to_one_for_times() -> None:
    instructions, cpu, qps = (get_measure(n) for n in ("instructions", "cpu", "qps"))
    assert _jobs(None, [instructions]) == (os.cpu_count() or 1)
    assert _jobs(None, [cpu, qps]) == 1
    assert _jobs(3, [instructions]) == 3 and _jobs(1, [cpu]) == 1
    with pytest.raises(UsageError) as caught:
        _jobs(2, [instructions, cpu])
    assert "cpu would read what each does to the other" in str(caught.value)


def test_jobs_on_a_timed_measure_is_one_line() -> None:
    result = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "--jobs", "2"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: --jobs above 1 runs servers side by side")
    assert "cpu, qps" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_two_jobs_measure_a_round_side_by_side_on_their_own_cores(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "compare", "-t", "raw-asgi", "-m", "none,secure", "--no-baseline", "--measure",
        "instructions", "--jobs", "2", "-r", "1", "--no-charts", "-d", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["settings"]["jobs"] == 2
    cpus = []
    for entry in data["sets"]:
        (one,) = entry["rounds"]
        assert one["status"] == "ok" and one["values"]["instructions"] > 0
        sweep = json.loads(Path(one["files"]).read_text())
        cpus.append(sweep["meta"]["server_cpus"])
    assert sorted(map(tuple, cpus)) == [(0,), (1,)]  # each job's server on a core of its own
    secure = data["sets"][1]["overheads"]["instructions"]["median"]
    assert secure > 1000  # secure's three headers, counted beside none's server


def test_side_by_side_the_fixed_rounds_follow_one_another_without_a_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two jobs, four contenders, `dump` the slow one: round 2 starts while round 1's `dump`
    still runs (a wait at each round's end left a core idle), every round lands in its own
    place, and a contender that answered wrongly is not timed in a round queued before."""
    entries = _entries()  # none, dump, cors, raw-asgi
    none, dump, cors, _ = entries
    spans: dict[tuple[str, int], tuple[float, float]] = {}

    def stand_in(contender: Contender, r: int, plan: object, *, name: str) -> Round:
        begun = time.monotonic()
        time.sleep(0.4 if contender is dump.contender else 0.05)
        spans[contender.label, r] = (begun, time.monotonic())
        if contender is cors.contender:
            raise ValidationError("cors answered 500")
        return Round(r, "ok", values={"instructions": 1000.0 * r})

    monkeypatch.setattr(run_module, "measure_round", stand_in)
    stand_ins = SimpleNamespace(cpus=None)
    plan = SimpleNamespace(repeat=2, precision=None, jobs=2, serve=stand_ins, load=stand_ins)
    report = SimpleNamespace(entries=entries, measures=())
    schedule = Schedule(entries, repeat=2)
    run_module._rounds(report, plan, schedule, time.monotonic(), lambda line: None)  # type: ignore[arg-type]
    assert spans[none.contender.label, 2][0] < spans[dump.contender.label, 1][1]
    for entry in (none, dump, entries[3]):
        assert [(one.repeat, one.status, one.values) for one in entry.rounds] == [
            (1, "ok", {"instructions": 1000.0}),
            (2, "ok", {"instructions": 2000.0}),
        ]
    assert [(one.repeat, one.status) for one in cors.rounds] == [(1, "failed"), (2, "failed")]
    assert cors.rounds[1].reason == run_module.NOT_TIMED and (cors.contender.label, 2) not in spans
