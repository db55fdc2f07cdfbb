"""`harness diff` and the .dat format, on files in the source document's format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.sweep.diff import diff, match_rows
from harness.load.datfile import DatError, DatRow, append_row, format_row, load_dat, parse_line
from harness.load.results import load_series, series_name

DAT = Path(__file__).parent / "fixtures" / "dat"
WRK = Path(__file__).parent / "fixtures" / "wrk"


def test_original_dat_loads_first_row_included() -> None:
    rows = load_dat(DAT / "apiserver.dat")
    assert len(rows) == 10
    assert rows[0] == DatRow(200, 4505.87, 43.73, 100.0)
    assert rows[-1].success_pct == pytest.approx(41.6)


def test_original_quirks_load_as_missing_values() -> None:
    rows = load_dat(DAT / "quirks.v2.dat")
    assert [row.concurrency for row in rows] == [500, 200, 1000]
    assert rows[0].success_pct == 100.0  # `100.00%`
    assert rows[2] == DatRow(1000, 0.0, 0.0, None)  # `-nan`
    # a latency in minutes, which the original's awk left empty: no latency, the rest kept
    assert load_dat(DAT / "minutes.dat")[2] == DatRow(1000, 4230.13, None, 99.43)


@pytest.mark.parametrize(
    ("name", "where", "text"),
    [
        ("broken.dat", "broken.dat:3", "expected 4 columns"),
        ("garbage.dat", "garbage.dat:2", "qps is not a number: 'fast'"),
    ],
)
def test_malformed_line_names_file_and_line(name: str, where: str, text: str) -> None:
    with pytest.raises(DatError) as info:
        load_dat(DAT / name)
    assert where in str(info.value) and text in str(info.value)


@pytest.mark.parametrize("line", ["0 1 1 100", "2.5 1 1 100", "-nan 1 1 1"])
def test_bad_concurrency(line: str) -> None:
    with pytest.raises(DatError, match=r"x\.dat:7"):
        parse_line(line, "x.dat:7")


def test_written_rows_read_back(tmp_path: Path) -> None:
    path = tmp_path / "a.dat"
    rows = [DatRow(8, 117930.51, 0.07854, 100.0), DatRow(32, 3335.36, None, 99.5)]
    for row in rows:
        append_row(path, row)
    assert path.read_text().splitlines()[0] == "8 117930.51 0.07854 100.00"
    assert format_row(rows[1]) == "32 3335.36 nan 99.50"
    assert load_dat(path) == rows


def test_names_taken_literally() -> None:
    assert series_name(Path("_output/wrk/apiserver.dat")) == "apiserver"
    # The original's `sed 's/.dat//g'` would have eaten `.v2.d` + `at`: not here.
    assert series_name(Path("quirks.v2.dat")) == "quirks.v2"
    assert series_name(Path("my.data.json")) == "my.data"


def test_rows_matched_by_concurrency_every_row_kept() -> None:
    a, b = load_series(DAT / "quirks.v2.dat"), load_series(DAT / "apiserver.dat")
    rows = match_rows(a, b)
    assert [row.concurrency for row in rows] == [
        200, 500, 1000, 3000, 5000, 10000, 15000, 20000, 25000, 50000,
    ]  # fmt: skip
    assert rows[0].a is not None and rows[0].b is not None
    assert rows[0].a.qps == rows[0].b.qps == 4505.87
    assert rows[3].a is None and rows[3].qps_change_pct is None


def test_diff_reproduces_the_documents_ratio(tmp_path: Path) -> None:
    result = diff(a=DAT / "apiserver.dat", b=DAT / "http.dat", out_dir=tmp_path)
    assert result.peak_ratio_pct == pytest.approx(13.68, abs=0.005)
    assert [p.name for p in result.charts] == [
        "apiserver_http.qps.ttlb.diff.png",
        "apiserver_http.successrate.diff.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in result.charts)
    first = result.rows[0]
    assert first.concurrency == 200
    assert first.qps_change_pct == pytest.approx(100 * (32938.22 - 4505.87) / 4505.87)
    assert first.success_change_pp == 0.0


def test_diff_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["diff", str(DAT / "apiserver.dat"), str(DAT / "http.dat"), "-d", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "apiserver reaches 13.68% of http" in result.output
    assert "+631.0%" in result.output  # c=200 QPS change, B relative to A
    assert (tmp_path / "apiserver_http.successrate.diff.png").exists()


def test_diff_json_against_dat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WRK_PLAN", "200=ceiling_latency,500=refused,*=flask_latency")
    out = tmp_path / "runs"
    run = CliRunner().invoke(
        main,
        ["run", "http://127.0.0.1:1/healthz", "-n", "fw&raw", "-d", str(out), "-c", "200,500,1000",
         "--wrk", str(WRK / "fake_wrk.py"), "--warmup", "0", "--no-charts"],
    )  # fmt: skip
    assert run.exit_code == 1, run.output  # c=500 refused: kept as failed, said by the exit
    result = CliRunner().invoke(
        main, ["diff", str(out / "fw&raw.json"), str(DAT / "apiserver.dat"), "-d", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fw&raw_apiserver.qps.ttlb.diff.png").exists()
    series = load_series(out / "fw&raw.json")
    assert series.failed == {500: series.failed[500]} and "refused" in series.failed[500]
    assert series.duration_s == 10.0 and series.threads == [2]


@pytest.mark.parametrize(
    ("name", "message"),
    [("broken.dat", "broken.dat:3"), ("missing.dat", "missing.dat: no such file")],
)
def test_diff_bad_file_is_one_line(tmp_path: Path, name: str, message: str) -> None:
    result = CliRunner().invoke(
        main, ["diff", str(DAT / name), str(DAT / "http.dat"), "-d", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_diff_bad_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope")
    result = CliRunner().invoke(
        main, ["diff", str(bad), str(DAT / "http.dat"), "-d", str(tmp_path)]
    )
    assert result.exit_code == 1 and "bad.json:2" in result.output
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"levels": []}))
    result = CliRunner().invoke(main, ["diff", str(other), str(DAT / "http.dat")])
    assert result.exit_code == 1 and "not a harness run result" in result.output


def test_original_dat_in_a_sweep_dir_is_diffable(tmp_path: Path) -> None:
    shutil.copy(DAT / "quirks.v2.dat", tmp_path / "quirks.v2.dat")
    result = diff(a=tmp_path / "quirks.v2.dat", b=DAT / "http.dat", out_dir=tmp_path, charts=False)
    assert result.rows[0].concurrency == 200 and result.charts == []
