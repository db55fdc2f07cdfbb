"""A level where every answer was an error (all 404) is a point at 0% success, not a hole: a row
in NAME.dat, a level in NAME.json with its reason, a point on both charts, and a row in diff.
Replayed with the recorded wrk (tests/fixtures/wrk: ceiling_non2xx and starlette_404 are real
all-404 captures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from matplotlib.figure import Figure

import harness.render.charts as charts
from harness.cli.main import main
from harness.experiments.sweep.diff import diff
from harness.load.datfile import DatRow, load_dat
from harness.load.results import load_series

FAKE_WRK = str(Path(__file__).parent / "fixtures" / "wrk" / "fake_wrk.py")
URL = "http://127.0.0.1:8000/healthz"
# flask_latency: 3,335 req/s of 200s; ceiling_non2xx: 144,507 req/s of 404s, 50.65 µs mean;
# refused: nothing completed.
# The two levels with 2xx answers differ (flask_seconds is slower), so the peak is not a tie.
PLAN = "8=flask_latency,16=ceiling_non2xx,32=refused,*=flask_seconds"
NON2XX_QPS, NON2XX_LATENCY_MS = 144506.58, 0.05065

Drawn = dict[str, list[dict[str, Any]]]  # chart file name -> its lines: label, xs, ys


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Drawn:
    """What every chart saved in the test really plotted, read off the figure before saving."""
    seen: Drawn = {}
    save = charts.save_figure

    def record(fig: Figure, path: Path) -> Path:
        seen[path.name] = [
            {"label": str(line.get_label()), "xs": list(line.get_xdata()),
             "ys": [float(y) for y in line.get_ydata()]}
            for ax in fig.axes for line in ax.get_lines()
        ]  # fmt: skip
        return save(fig, path)

    monkeypatch.setattr(charts, "save_figure", record)
    return seen


def run(
    monkeypatch: pytest.MonkeyPatch, out: Path, plan: str, levels: str, name: str, *args: str
) -> Result:
    monkeypatch.setenv("FAKE_WRK_PLAN", plan)
    monkeypatch.delenv("HARNESS_WRK", raising=False)
    return CliRunner().invoke(
        main,
        ["run", URL, "-d", str(out), "-n", name, "--wrk", FAKE_WRK, "--warmup", "0",
         "-c", levels, *args],
    )  # fmt: skip


def points(lines: list[dict[str, Any]], label: str) -> list[tuple[int, float]]:
    (line,) = [line for line in lines if line["label"] == label]
    return list(zip(line["xs"], line["ys"], strict=True))


def test_an_all_404_level_is_a_row_a_json_level_and_a_point_on_both_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drawn: Drawn
) -> None:
    out = tmp_path / "out"
    result = run(monkeypatch, out, PLAN, "8,16,32,64", "job")
    assert result.exit_code == 1, result.output  # two levels not measured, said at the end
    assert "2 of 4 levels were not measured" in result.output

    rows = load_dat(out / "job.dat")
    assert [row.concurrency for row in rows] == [8, 16, 64]  # 32 completed nothing: no row
    assert rows[1] == DatRow(16, NON2XX_QPS, NON2XX_LATENCY_MS, 0.0)
    assert (out / "job.dat").read_text().splitlines()[1] == "16 144506.58 0.05065 0.00"
    assert "nan" not in (out / "job.dat").read_text()

    data = json.loads((out / "job.json").read_text())
    levels = {level["concurrency"]: level for level in data["levels"]}
    assert levels[16]["status"] == "failed"
    assert levels[16]["reason"] == "no 2xx/3xx responses (158899 non-2xx/3xx)"
    assert levels[16]["non2xx3xx"] == levels[16]["requests"] == 158899
    assert levels[16]["success_pct"] == 0.0 and levels[16]["qps"] == NON2XX_QPS
    assert levels[32]["status"] == "failed" and "Connection refused" in levels[32]["reason"]
    # The error path's 144k req/s is no peak: the peak is a level with 2xx answers.
    assert data["peak"] == {"concurrency": 8, "qps": 3335.36}
    assert "c=16 failed: no 2xx/3xx responses" in result.output

    success = drawn["job_successrate.png"]
    assert points(success, "success rate") == [(8, 100.0), (16, 0.0), (64, 100.0)]
    qps = drawn["job_qps_ttlb.png"]
    assert points(qps, "QPS") == [(8, 3335.36), (64, 2058.15)]  # the URL's line, 404s off it
    assert points(qps, "QPS, no 2xx/3xx answer") == [(16, NON2XX_QPS)]
    assert points(qps, "avg latency, no 2xx/3xx answer") == [(16, NON2XX_LATENCY_MS)]
    assert points(qps, "job: failed / skipped") == [(32, 0.0)]
    assert data["files"]["charts"] == [
        "job_qps_ttlb.png", "job_successrate.png", "job_latency.png",
    ]  # fmt: skip
    assert all((out / name).stat().st_size > 10_000 for name in data["files"]["charts"])


def test_every_level_404_is_rows_at_0pct_and_still_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drawn: Drawn
) -> None:
    out = tmp_path / "out"
    result = run(monkeypatch, out, "8=ceiling_non2xx,*=starlette_404", "8,16", "job")
    assert result.exit_code == 1
    assert "every level failed" in result.output
    assert [(row.concurrency, row.success_pct) for row in load_dat(out / "job.dat")] == [
        (8, 0.0), (16, 0.0),
    ]  # fmt: skip
    data = json.loads((out / "job.json").read_text())
    assert data["peak"] is None
    assert [lv["reason"] for lv in data["levels"]] == [
        "no 2xx/3xx responses (158899 non-2xx/3xx)",
        "no 2xx/3xx responses (9618 non-2xx/3xx)",
    ]
    # The success chart exists to show exactly this; there is no latency chart of error pages.
    assert data["files"]["charts"] == ["job_qps_ttlb.png", "job_successrate.png"]
    assert points(drawn["job_successrate.png"], "success rate") == [(8, 0.0), (16, 0.0)]
    assert points(drawn["job_qps_ttlb.png"], "QPS") == []


def test_diff_shows_the_404_level_and_compares_no_speed_against_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drawn: Drawn
) -> None:
    out = tmp_path / "out"
    assert run(monkeypatch, out, PLAN, "8,16,32,64", "broken", "--no-charts").exit_code == 1
    fixed = run(monkeypatch, out, "*=flask_latency", "8,16,32,64", "fixed", "--no-charts")
    assert fixed.exit_code == 0
    for a in (out / "broken.json", out / "broken.dat"):  # a .dat says it too: success 0.00
        series = load_series(a)
        assert [row.concurrency for row in series.no_2xx_rows] == [16]
        result = diff(a=a, b=out / "fixed.json", out_dir=tmp_path / "diff")
        by_level = {row.concurrency: row for row in result.rows}
        assert by_level[16].a is not None and by_level[16].a.success_pct == 0.0
        assert by_level[16].success_change_pp == 100.0
        assert by_level[16].qps_change_pct is None  # 404s per second are not a speed
        assert by_level[8].qps_change_pct == 0.0
        assert result.peak_a is not None and result.peak_a.qps == 3335.36
        success = drawn["broken_fixed.successrate.diff.png"]
        assert (16, 0.0) in points(success, "broken")
        qps = drawn["broken_fixed.qps.ttlb.diff.png"]
        assert points(qps, "broken QPS, no 2xx/3xx answer") == [(16, NON2XX_QPS)]

    shown = CliRunner().invoke(
        main,
        [
            "diff",
            str(out / "broken.json"),
            str(out / "fixed.json"),
            "-d",
            str(tmp_path),
            "--no-charts",
        ],
    )
    assert shown.exit_code == 0, shown.output
    (line,) = [line for line in shown.output.splitlines() if line.strip().startswith("│ 16 ")]
    assert "144,507 not 2xx" in line and "0.00%" in line and "+100.0 pp" in line
