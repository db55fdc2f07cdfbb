"""harness calibrate: the pass/fail check on known data, the command on a stand-in compare, the
`spin:` syntax through the real CLI, and calibrate end to end on one WSGI and one ASGI target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import harness.experiments.calibrate.run
from harness.cli.main import main
from harness.experiments.calibrate.render import write_calibration
from harness.experiments.calibrate.run import calibrate, fit, parse_costs
from harness.experiments.compare.contenders import Contender, Entry, link
from harness.experiments.compare.render import write_report
from harness.experiments.compare.result import CompareReport, CompareSettings
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.measures.known_check import CheckRow, CostCheck, check_cost, failure_message
from harness.serving.servers import RunningServer
from harness.serving.settings import ServeSettings
from harness.stats.intervals import Estimate
from middleware.stack import BadSpin, stack_name
from targets.table import get_target
from tests.synthetic import set_overheads, spread
from tests.test_compare import _left_running, started  # noqa: F401  (a fixture)

# ---------------------------------------------------------------------------------------------
# the check, on known data


@pytest.mark.parametrize(
    ("known", "measured", "passed"),
    [
        (20.0, Estimate(21.0, 19.0, 23.0, 3), True),  # inside the interval
        (20.0, Estimate(22.0, 21.9, 22.1, 3), True),  # 1.9 below it: within 10% of 20
        (20.0, Estimate(22.5, 22.1, 22.9, 3), False),  # 2.1 below it: not within 10%
        (20.0, Estimate(17.5, 17.1, 17.9, 3), False),  # 2.1 above it
        (20.0, Estimate(18.0, 17.9, 18.1, 3), True),  # 1.9 above it
        (20.0, Estimate(21.5, None, None, 1), True),  # no interval: median ± 10% of known
        (20.0, Estimate(23.0, None, None, 1), False),
        (5.0, Estimate(5.4, 5.3, 5.5, 20), True),
        (5.0, Estimate(5.7, 5.6, 5.8, 20), False),
        (20.0, None, False),  # not measured
    ],
)
def test_known_cost_inside_the_widened_interval(
    known: float, measured: Estimate | None, passed: bool
) -> None:
    check = check_cost(known, measured)
    assert check.passed is passed
    if measured is None:
        assert check.bounds is None and check.error_us is None
        assert "not measured" in check.describe()
    else:
        assert check.error_us == pytest.approx(measured.median - known)
        assert check.error_pct == pytest.approx(100 * (measured.median - known) / known)


def test_bounds_and_the_failure_message_name_the_cost_and_the_measure() -> None:
    check = CostCheck(50.0, Estimate(60.0, 56.0, 64.0, 3))
    assert check.bounds == pytest.approx((51.0, 69.0))
    assert check.to_dict()["accepted_low_us"] == 51.0 and check.to_dict()["passed"] is False
    rows = [
        CheckRow("spin:20us", "1e6/QPS per server core", check_cost(20, Estimate(20, 19, 21, 3))),
        CheckRow("spin:50us", "server CPU time per request", check),
    ]
    message = failure_message(rows, "calibration of flask")
    assert message is not None and "\n" not in message
    assert "1 of 2" in message
    assert "spin:50us (server CPU time per request): known 50 µs, measured 60.00 µs" in message
    assert "spin:20us" not in message
    assert failure_message(rows[:1]) is None
    assert "[low - 10% of known, high + 10% of known]" in message
    wide = CostCheck(50.0, Estimate(90.0, 86.0, 94.0, 3), tolerance=0.5)
    said = failure_message([CheckRow("spin:50us", "server CPU time per request", wide)])
    assert said is not None and "[low - 50% of known, high + 50% of known]" in said
    assert check_cost(50.0, Estimate(60.0, 56.0, 64.0, 3), tolerance=0.2).passed


def test_costs_are_parsed_in_us_or_with_units() -> None:
    assert parse_costs("5,20,50") == (5_000, 20_000, 50_000)
    assert parse_costs("50 5us,1.5ms, 20") == (5_000, 20_000, 50_000, 1_500_000)
    assert parse_costs("20,20us") == (20_000,)
    for bad in ("", "0", "abc", "-5", "5s", "2000ms", "0.5"):
        with pytest.raises(BadSpin):
            parse_costs(bad)


def test_fit_finds_slope_and_intercept() -> None:
    line = fit([(5, 7.0), (20, 22.0), (50, 52.0)])
    assert line is not None
    assert line.slope == pytest.approx(1.0) and line.intercept_us == pytest.approx(2.0)
    assert fit([(20, 21.0)]) is None


# ---------------------------------------------------------------------------------------------
# the command, on a stand-in for compare: what it prints, writes and exits with


def _fake_compare(measured: dict[str, tuple[Estimate, Estimate]]) -> Any:
    """A compare() that measures nothing: `measured[set name]` = (1/QPS, CPU) overheads, each
    median ± half-width (symmetric) over three rounds."""

    def fake(*, targets: list[Any], sets: list[tuple[str, ...]], out_dir: Path, **kw: Any) -> Any:
        target = get_target(targets[0]) if isinstance(targets[0], str) else targets[0]
        entries = [Entry(Contender(target, stack, "set"), stack_name(stack), []) for stack in sets]
        link(entries)
        for k, measure in enumerate(("qps", "cpu")):
            set_overheads(
                entries,
                {
                    label: spread(est[k].median, est[k].half_width or 0.0, 3)
                    for label, est in measured.items()
                },
                measure,
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        settings = CompareSettings(
            levels=[64],
            duration_s=3.0,
            warmup_s=1.0,
            repeat=kw["repeat"],
            pinning="server on CPU 0, wrk on CPU 1",
        )
        names = [t if isinstance(t, str) else t.name for t in targets]
        return CompareReport(
            targets=names,
            baselines=[],
            entries=entries,
            settings=settings,
            out_dir=out_dir,
            measures=("cpu", "qps"),
        )

    return fake


GOOD = {
    "spin:5us": (Estimate(6.0, 2.0, 10.0, 3), Estimate(5.2, 4.85, 5.55, 3)),
    "spin:20us": (Estimate(21.0, 15.0, 27.0, 3), Estimate(20.4, 19.8, 21.0, 3)),
    "spin:50us": (Estimate(52.0, 44.0, 60.0, 3), Estimate(50.9, 49.0, 52.8, 3)),
}


def test_calibrate_command_passes_writes_and_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness.experiments.calibrate.run, "compare", _fake_compare(GOOD))
    result = CliRunner().invoke(main, ["calibrate", "-t", "flask", "-d", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for text in ("spin:5us", "spin:50us", "1e6/QPS per server core", "server CPU time per",
                 "pass", "Fit (server CPU time per request)"):  # fmt: skip
        assert text in result.output
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert data["kind"] == "calibration" and data["target"] == "flask" and data["passed"]
    assert (data["schema"], data["version"]) == ("mwbench.calibration", 2)
    assert data["settings"]["sets"] == ["none", "spin:5us", "spin:20us", "spin:50us"]
    assert data["settings"]["repeat"] == 3 and "load_avg_start" in data["environment"]
    assert "10% of known" in data["rule"]
    five = data["costs"][0]
    assert (five["set"], five["known_us"]) == ("spin:5us", 5.0)
    for key in ("known_us", "median_us", "low_us", "high_us", "error_us", "error_pct", "passed"):
        assert key in five["qps"] and key in five["cpu"]
    assert five["cpu"]["median_us"] == 5.2 and five["cpu"]["error_us"] == pytest.approx(0.2)
    assert (tmp_path / "calibration.png").stat().st_size > 0


def test_calibrate_command_fails_naming_the_cost_and_measure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {**GOOD, "spin:20us": (GOOD["spin:20us"][0], Estimate(26.0, 25.0, 27.0, 3))}
    monkeypatch.setattr(harness.experiments.calibrate.run, "compare", _fake_compare(bad))
    result = CliRunner().invoke(
        main, ["calibrate", "-t", "starlette", "-d", str(tmp_path), "--no-charts"]
    )
    assert result.exit_code == 1
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "spin:20us (server CPU time per request)" in error and "spin:50us" not in error
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert not data["passed"] and data["costs"][1]["cpu"]["passed"] is False
    assert not (tmp_path / "calibration.png").exists()
    # A wider tolerance accepts it.
    again = CliRunner().invoke(
        main, ["calibrate", "-t", "starlette", "-d", str(tmp_path), "--tolerance", "30"]
    )
    assert again.exit_code == 0, again.output


# ---------------------------------------------------------------------------------------------
# the `spin:` syntax through the real CLI: bad values are usage errors naming the syntax


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "-t", "flask", "-m", "spin:abc"],
        ["serve", "-t", "raw-asgi", "-m", "logger+spin"],
        ["compare", "-t", "flask", "-m", "spin:0us"],
        ["compare", "-t", "flask", "-m", "none,spin:5s"],
        ["micro", "-t", "flask", "-m", "none,spin:20 parsecs"],
        ["micro", "-t", "flask", "-m", "spin:-5us"],
        ["profile", "-t", "flask", "-m", "spin:"],
    ],
)
def test_bad_spins_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "spin:N with N in us or ms" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-t", "flask", "--costs", "0"], "--costs: bad cost '0'"),
        (["-t", "flask", "--costs", "5,abc"], "--costs: bad cost 'abc'"),
        (["-t", "flask", "--costs", "2s"], "--costs: bad cost '2s'"),
        (["-t", "flask", "--measure", "instructions", "--costs", "5us"], "--costs: bad cost"),
        (["-t", "flask", "--measure", "latency"], "or instructions or instructions-perf"),
        (["-t", "flask", "--tolerance", "nan"], "not a finite number"),
        (["-t", "ceiling"], "ceiling takes no middleware"),
        (["-t", "rails"], "unknown target 'rails'"),
        (["-t", "flask", "--repeat", "1"], "x>=2"),
        (["-t", "flask", "--duration", "0"], "more than 0"),
    ],
)
def test_bad_calibrate_options_are_usage_errors(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(main, ["calibrate", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output


def test_a_missing_wrk_is_one_line_before_any_server_starts(
    tmp_path: Path,
    started: list[RunningServer],  # noqa: F811
) -> None:
    result = CliRunner().invoke(
        main, ["calibrate", "-t", "flask", "--wrk", "/nonexistent/wrk", "-d", str(tmp_path)]
    )
    assert result.exit_code == 1 and "wrk" in result.output
    assert "Traceback" not in result.output and started == []


# ---------------------------------------------------------------------------------------------
# end to end: real servers, real wrk, short runs


# WSGI on granian: on the project's VMs gunicorn's WSGI workers cost ~300-400 µs of CPU per
# request and vary by a quarter of that between rounds, more than two 1 s rounds can average out;
# granian's WSGI costs ~35 µs. Costs well above either server's own, for the same reason.
@pytest.mark.parametrize(("target", "server"), [("raw-wsgi", "granian"), ("django", "granian")])
def test_calibrate_end_to_end(
    target: str,
    server: str | None,
    tmp_path: Path,
    started: list[RunningServer],  # noqa: F811
) -> None:
    report = calibrate(
        target=target,
        # Costs that slow either server well below wrk's pace: below that, each response
        # also pays a wake-up of wrk's idle CPU, an indirect cost (docs/middleware.md).
        costs=(300_000, 1_000_000),
        serve=ServeSettings(server=server, cpus=plan().server),
        load=LoadSettings(levels=(16,), duration=1.0, warmup=0.0, cpus=plan().load),
        repeat=2,
        out_dir=tmp_path,
        echo=lambda line: None,
    )
    assert report.missing == []
    small, large = report.points
    for key in ("qps", "cpu"):
        a, b = small.checks[key].measured, large.checks[key].measured
        assert a is not None and b is not None
        assert b.median > a.median > 0, (key, a, b)  # more known cost, more measured cost
    for point in report.points:
        cpu = point.checks["cpu"].measured
        assert cpu is not None
        # Generous: two 1 s rounds, on a machine other tests may share.
        assert abs(cpu.median - point.known_us) <= 0.5 * point.known_us, (point.label, cpu)
    write_report(report.compare, charts=False)
    write_calibration(report)
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert [c["set"] for c in data["costs"]] == ["spin:300us", "spin:1ms"]
    assert data["environment"]["packages"] and data["environment"]["wrk"]
    assert (tmp_path / "calibration.png").stat().st_size > 0
    # compare's own files, under file-safe names
    stem = f"{server}_{target}" if server else target  # a chosen server names the files too
    assert (tmp_path / f"{stem}_spin-300us_r2.json").exists()
    assert not [p for p in tmp_path.rglob("*") if ":" in p.name]
    compared = json.loads((tmp_path / "compare.json").read_text())
    assert [s["name"] for s in compared["sets"]] == ["none", "spin:300us", "spin:1ms"]
    assert compared["baseline"] is None
    assert len(started) == 6 and _left_running(started) == []


def test_the_calibrate_command_end_to_end(
    tmp_path: Path,
    started: list[RunningServer],  # noqa: F811
) -> None:
    # The command as a user runs it, on real servers and the real wrk. Its own verdict is the
    # check: 50% of the known cost, as generous as the API test above, for two 1 s rounds.
    result = CliRunner().invoke(
        main,
        ["calibrate", "-t", "raw-asgi", "--costs", "300us,1ms", "--repeat", "2", "-c", "16",
         "--duration", "1s", "--warmup", "0", "--tolerance", "50", "-d", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("calibration: raw-asgi", "spin:300us", "spin:1ms", "server CPU time per",
                 "1e6/QPS per server core", "Fit (server CPU time per request)"):  # fmt: skip
        assert text in result.output, text
    assert result.output.count("pass") >= 4  # two costs, two measures
    data = json.loads((tmp_path / "calibration.json").read_text())
    assert data["passed"] and data["target"] == "raw-asgi" and data["tolerance"] == 0.5
    assert [c["set"] for c in data["costs"]] == ["spin:300us", "spin:1ms"]
    for cost in data["costs"]:
        for key in ("qps", "cpu"):
            assert cost[key]["n"] == 2 and cost[key]["passed"], (cost["set"], key)
    small, large = (c["cpu"]["median_us"] for c in data["costs"])
    assert large > small > 0
    for name in ("calibration.png", "compare.json", "compare.md", "raw-asgi_spin-1ms_r2.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert len(started) == 6 and _left_running(started) == []
