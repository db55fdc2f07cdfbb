"""`compare --jobs N`: contenders measured side by side, for measures that count rather than
time; refused, in one line, for any measure that reads time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import UsageError
from harness.experiments.compare.plan import _jobs
from harness.measures.registry import get_measure


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
