"""One convention for every JSON file: `{"schema": "mwbench.X", "version": N, ...}`, read back by
what it says it is; files written before the convention (a sweep's `"schema": 1`, a compare.json
of the layout before experiments/) still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import RunError
from harness.experiments.compare.result import CompareReport
from harness.load.files import read_versioned, schema_of, versioned, write_json
from harness.load.results import ResultError, SweepResult

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WRK = FIXTURES / "wrk"
STORED_COMPARE = FIXTURES / "demo" / "starlette" / "compare.json"  # written before the move


class Unreadable(RunError):
    pass


def test_a_versioned_file_reads_back_as_written(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", versioned("thing", 3, {"a": [1, 2]}))
    assert json.loads(path.read_text())["schema"] == "mwbench.thing"
    data = read_versioned(path, schema="thing", versions={2, 3}, error=Unreadable)
    assert data == {"schema": "mwbench.thing", "version": 3, "a": [1, 2]}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            '{"schema": "mwbench.other", "version": 1}',
            "not a thing file (no schema 'mwbench.thing')",
        ),
        ('{"schema": "mwbench.thing", "version": 9}', "thing file version 9; this harness reads"),
        ("[1, 2]", "not a thing file"),
        ('{"schema": "mwbench.thing",\n nope', "x.json:2: not JSON"),
    ],
)
def test_what_a_reader_cannot_read_is_said_in_one_line(
    tmp_path: Path, text: str, said: str
) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(Unreadable) as caught:
        read_versioned(path, schema="thing", versions={3}, error=Unreadable)
    assert said in str(caught.value) and "\n" not in str(caught.value), caught.value


def test_a_compare_json_written_before_the_move_loads() -> None:
    report = CompareReport.load(STORED_COMPARE)
    assert report.entries and report.headline.name == report.measures[0]
    assert report.to_dict()["schema"] == "mwbench.compare"


def _sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_WRK_PLAN", "*=flask_latency")
    args = ["run", "http://127.0.0.1:1/healthz", "-n", "job", "-d", str(tmp_path), "-c", "8,16"]
    args += ["--wrk", str(WRK / "fake_wrk.py"), "--warmup", "0", "--no-charts"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return tmp_path / "job.json"


def test_a_sweep_says_what_it_is_and_one_from_before_the_convention_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _sweep(tmp_path, monkeypatch)
    data = json.loads(path.read_text())
    assert (data["schema"], data["version"]) == ("mwbench.sweep", 2)
    legacy = {**data, "schema": 1}
    del legacy["version"]
    path.write_text(json.dumps(legacy))
    assert schema_of(legacy) == "mwbench.sweep"
    assert [level.concurrency for level in SweepResult.load(path).levels] == [8, 16]
    path.write_text(json.dumps({**data, "version": 7}))
    with pytest.raises(ResultError, match="sweep file version 7"):
        SweepResult.load(path)


def test_diff_tells_a_compare_from_a_sweep_by_its_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = _sweep(tmp_path / "s", monkeypatch)
    renamed = tmp_path / "baseline.json"  # not named compare.json: its schema says what it is
    renamed.write_text(STORED_COMPARE.read_text())
    result = CliRunner().invoke(main, ["diff", str(renamed), str(sweep), "-d", str(tmp_path)])
    assert result.exit_code == 2 and "not one of each" in result.output, result.output
    result = CliRunner().invoke(
        main, ["diff", str(renamed), str(STORED_COMPARE), "-d", str(tmp_path / "d")]
    )
    assert result.exit_code == 0, result.output
