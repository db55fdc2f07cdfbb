"""`harness diff A/compare.json B/compare.json`: the change per set between two compares, with
an interval from the two runs' rounds, and the gate that makes it a CI check."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import UsageError
from harness.experiments.compare.contenders import Contender, Entry, link
from harness.experiments.compare.diff import Regression, diff_compares
from harness.experiments.compare.result import CompareReport, CompareSettings
from harness.stats.intervals import welch
from middleware.stack import stack_name
from targets.table import get_target
from tests.synthetic import report_of, set_overheads, spread


def test_welch_interval_of_two_runs() -> None:
    before, after = [10.0, 11.0, 12.0], [20.0, 21.0, 22.0, 23.0]
    change = welch(after, before)
    assert change is not None and change.median == pytest.approx(21.5 - 11.0)
    mean = statistics.fmean(after) - statistics.fmean(before)
    assert change.low is not None and change.high is not None
    assert change.low < mean < change.high and change.significant
    # Welch's interval is wider than the one that pretends the rounds are paired or equal.
    se = math.sqrt(statistics.variance(after) / 4 + statistics.variance(before) / 3)
    assert (change.high - change.low) / 2 > 1.96 * se
    same = welch([5.0, 5.1, 4.9], [5.0, 4.9, 5.1])
    assert same is not None and not same.significant
    assert welch([1.0], [2.0]).has_interval is False  # type: ignore[union-attr]
    assert welch([], [1.0]) is None


def _report(tmp: Path, logger_cost: float, name: str = "a") -> CompareReport:
    starlette, raw = get_target("starlette"), get_target("raw-asgi")
    entries = link(
        [Entry(Contender(starlette, s, "set"), stack_name(s), []) for s in ((), ("logger",))]
        + [Entry(Contender(raw, (), "baseline"), "raw-asgi:none", [])]
    )
    set_overheads(entries, {"none": spread(30.0, 1.0, 4), "logger": spread(logger_cost, 1.0, 4)})
    return report_of(entries, out_dir=tmp / name, measures=("cpu",))


def test_a_slower_set_is_found_and_gated(tmp_path: Path) -> None:
    before, after = _report(tmp_path, 5.0), _report(tmp_path, 25.0, "b")
    diff = diff_compares(before, after, Regression(10.0, "cpu"))
    by = {c.label: c for c in diff.changes}
    assert by["logger"].quantity == "overhead" and by["raw-asgi:none"].quantity == "cost"
    assert by["logger"].change.median == pytest.approx(20.0)  # type: ignore[union-attr]
    assert by["logger"].pct == pytest.approx(400.0)
    assert not by["none"].change.significant  # type: ignore[union-attr]
    assert [c.label for c in diff.regressions] == ["logger"]
    assert diff.regression_lines() == ["logger: overhead +20.0 ± 1.1 µs (+400.0%) > +10 µs"]
    # As a share of A's figure; and the other way round, faster is no regression.
    relative = diff_compares(before, after, Regression(1.0, "cpu", True))  # +100%
    assert [c.label for c in relative.regressions] == ["logger"]  # +400%; none and raw: 0%
    assert diff_compares(after, before, Regression(10.0, "cpu")).regressions == []
    assert diff_compares(before, after, Regression(30.0, "cpu")).regressions == []


def test_what_cannot_be_diffed_is_a_usage_error(tmp_path: Path) -> None:
    a = _report(tmp_path, 5.0)
    b = _report(tmp_path, 5.0, "b")
    b.measures = ("qps",)
    with pytest.raises(UsageError, match="share no measure: A has cpu, B qps"):
        diff_compares(a, b)
    c = _report(tmp_path, 5.0, "c")
    for entry in c.entries:
        entry.label = "other:" + entry.label
    with pytest.raises(UsageError, match="share no set"):
        diff_compares(a, c)
    with pytest.raises(UsageError, match="the gate's measure, instructions, is not in both"):
        diff_compares(a, _report(tmp_path, 5.0, "d"), Regression(1.0, "instructions"))


# A user's app, written the way users write one; its middleware's cost is what changes.
APP = """
import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

COST_NS = {cost}
FIXED_NS = 300_000


class Spin:
    cost_ns = 0

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            end = time.thread_time_ns() + self.cost_ns
            while time.thread_time_ns() < end:
                pass
        await self.app(scope, receive, send)


class Fixed(Spin):
    cost_ns = FIXED_NS


class Work(Spin):
    cost_ns = COST_NS


async def ping(request):
    return JSONResponse({{"pong": True}})


app = Starlette(routes=[Route("/ping", ping)], middleware=[Middleware(Fixed), Middleware(Work)])
"""


def _compare(app_dir: Path, out: Path, cost_ns: int) -> None:
    (app_dir / "main.py").write_text(APP.format(cost=cost_ns))
    result = CliRunner().invoke(
        main,
        ["compare", "--app", f"{app_dir / 'main.py'}:app", "--path", "/ping", "-m", "each",
         "-r", "2", "-c", "16", "--duration", "1s", "--warmup", "0", "--no-ceiling",
         "--no-charts", "-d", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_two_real_compares_before_and_after_a_change_to_the_app(tmp_path: Path) -> None:
    """Two layers, each measured alone (-m each): Fixed costs 0.3 ms in both runs, Work 0.5 ms
    before and 1.5 ms after. Each gate, in µs and in percent of a before that is not zero,
    fails the costly change and passes the cheap one."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    _compare(app_dir, tmp_path / "before", 500_000)
    _compare(app_dir, tmp_path / "after", 1_500_000)  # Work now costs 1 ms more a request
    a, b = tmp_path / "before" / "compare.json", tmp_path / "after" / "compare.json"
    runner = CliRunner()
    gated = runner.invoke(main, ["diff", str(a), str(b), "--max-regression", "500us",
                                 "-d", str(tmp_path / "diff")])  # fmt: skip
    assert gated.exit_code == 1, gated.output
    (error,) = [line for line in gated.output.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: regression over --max-regression: Work: overhead +")
    assert "> +500 µs" in error
    assert "Fixed" not in error and "none:" not in error  # what did not change passes
    data = json.loads((tmp_path / "diff" / "compare-diff.json").read_text())
    assert data["schema"] == "mwbench.compare-diff" and data["regressions"]
    change = next(c for c in data["changes"] if c["set"] == "Work" and c["measure"] == "cpu")
    assert 800 < change["change"]["median"] < 1300 and change["change"]["significant"]
    fixed = next(c for c in data["changes"] if c["set"] == "Fixed" and c["measure"] == "cpu")
    # 0.3 ms in both runs: its change is noise, small beside Work's millisecond
    assert abs(fixed["change"]["median"]) < change["change"]["median"] / 4, fixed
    assert "| Work | overhead |" in (tmp_path / "diff" / "compare-diff.md").read_text()
    # The other way round it got faster: no regression. A gate in percent, and a bad mix.
    assert runner.invoke(main, ["diff", str(b), str(a), "--max-regression", "500us",
                                "-d", str(tmp_path / "d2")]).exit_code == 0  # fmt: skip
    # In percent of a before that is not zero: Work +200% (0.5 -> 1.5 ms) fails 50%; Fixed,
    # 0.3 ms in both runs, passes it, and Work passes 400%.
    relative = runner.invoke(main, ["diff", str(a), str(b), "--max-regression", "50%",
                                    "-d", str(tmp_path / "d3")])  # fmt: skip
    assert relative.exit_code == 1, relative.output
    (error,) = [line for line in relative.output.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: regression over --max-regression: Work: overhead +")
    assert "> +50%" in error and "Fixed" not in error, error
    percent = float(error.split("(+")[1].split("%")[0])
    assert 150 < percent < 260, error  # +1 ms over 0.5: +200%, not a change from ~0
    loose = runner.invoke(main, ["diff", str(a), str(b), "--max-regression", "400%",
                                 "-d", str(tmp_path / "d4")])  # fmt: skip
    assert loose.exit_code == 0, loose.output
    dat = Path(__file__).parent / "fixtures" / "dat" / "apiserver.dat"
    mixed = runner.invoke(main, ["diff", str(a), str(dat)])
    assert mixed.exit_code == 2 and "give two compare.json or two sweeps" in mixed.output


def test_a_file_that_is_not_a_compare_report_is_one_line(tmp_path: Path) -> None:
    old = tmp_path / "old" / "compare.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"target": "flask", "sets": []}))  # version 1 had no schema
    result = CliRunner().invoke(main, ["diff", str(old), str(old)])
    assert result.exit_code == 1
    assert f"{old}: not a compare.json (no schema 'mwbench.compare')" in result.output


def _counted(tmp: Path, name: str, dump: float, requests: int) -> CompareReport:
    """A compare in instructions per request: deterministic, so its rounds barely spread."""
    starlette, raw = get_target("starlette"), get_target("raw-asgi")
    entries = link(
        [Entry(Contender(starlette, s, "set"), stack_name(s), []) for s in ((), ("dump",))]
        + [Entry(Contender(raw, (), "baseline"), "raw-asgi:none", [])]
    )
    set_overheads(entries, {"none": spread(74_000, 50, 2), "dump": spread(dump, 50, 2)},
                  measure="instructions")  # fmt: skip
    return report_of(
        entries,
        out_dir=tmp / name,
        settings=CompareSettings(requests=requests),
        measures=("instructions",),
    )


def test_a_ci_gate_in_instructions_catches_a_two_percent_regression(tmp_path: Path) -> None:
    """The README's CI recipe: instructions per request against a stored baseline, failing when
    a set grows by more than 1%; two rounds are enough, since the count hardly moves."""
    base = _counted(tmp_path, "base", 296_000, 600)
    slower = _counted(tmp_path, "new", 302_000, 600)  # dump +2%
    diff = diff_compares(base, slower, Regression(0.01, "instructions", True))
    assert [c.label for c in diff.regressions] == ["dump"]
    (line,) = diff.regression_lines()
    assert line.startswith("dump: overhead +6,000") and "(+2.0%)" in line and "> +1%" in line
    assert diff.measured_differently == []
    same = diff_compares(base, _counted(tmp_path, "again", 296_100, 600),
                         Regression(0.01, "instructions", True))  # fmt: skip
    assert same.regressions == []
    # another window changes the count by itself: the diff says so
    other = diff_compares(base, _counted(tmp_path, "w", 296_000, 300))
    assert other.measured_differently == ["requests: 600 → 300"]


def test_the_gate_fails_on_a_set_it_cannot_judge(tmp_path: Path) -> None:
    """A CI gate that passed a set B did not measure (its rounds failed, or the set is gone)
    would vouch for what nobody measured."""
    from harness.experiments.compare.contenders import Round

    base, broken = _report(tmp_path, 5.0), _report(tmp_path, 5.0, "b")
    logger = next(e for e in broken.entries if e.label == "logger")
    logger.rounds = [Round(r.repeat, "failed", reason="server died") for r in logger.rounds]
    diff = diff_compares(base, broken, Regression(10.0, "cpu"))
    assert diff.regressions == [] and diff.unjudged == ["logger"]
    assert diff_compares(base, broken).unjudged == []  # no gate, nothing to judge
    broken.entries = [e for e in broken.entries if e.label != "logger"]
    assert diff_compares(base, broken, Regression(10.0, "cpu")).unjudged == ["logger"]
    assert diff_compares(base, _report(tmp_path, 5.0, "c"), Regression(10.0, "cpu")).unjudged == []


def test_the_cli_gate_exits_1_naming_what_it_could_not_judge(tmp_path: Path) -> None:
    from harness.experiments.compare.contenders import Round

    paths = []
    for name, failed in (("base", False), ("broken", True)):
        report = _report(tmp_path, 5.0, name)
        if failed:
            logger = next(e for e in report.entries if e.label == "logger")
            logger.rounds = [Round(r.repeat, "failed", reason="died") for r in logger.rounds]
        report.out_dir.mkdir()
        (report.out_dir / "compare.json").write_text(json.dumps(report.to_dict()))
        paths.append(str(report.out_dir / "compare.json"))
    result = CliRunner().invoke(
        main, ["diff", *paths, "--max-regression", "10us", "-d", str(tmp_path / "d")]
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        "Error: --max-regression cannot judge logger: no cpu figure in one of the runs "
        "(every round failed, or the set is not in B)"
    )
    assert "Not judged, with no figure in one run: logger." in result.output


def test_a_compare_json_of_another_shape_is_one_line(tmp_path: Path) -> None:
    report = _report(tmp_path, 5.0, "a")
    report.out_dir.mkdir()
    good = report.to_dict()
    path = report.out_dir / "compare.json"
    shape = "not a well-formed compare.json"
    for corrupt, said in (
        (lambda d: d["sets"][0]["rounds"][0].update(values="abc"), shape),
        (lambda d: d["sets"][0]["rounds"].__setitem__(0, "ok"), shape),
        (lambda d: d.pop("measures"), "not a whole compare.json: no 'measures'"),
    ):
        data = json.loads(json.dumps(good))
        corrupt(data)
        path.write_text(json.dumps(data))
        result = CliRunner().invoke(main, ["diff", str(path), str(path)])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"Error: {path}: {said}"), line


def test_diff_names_its_files_and_refuses_what_it_cannot_read_or_write(tmp_path: Path) -> None:
    report = _report(tmp_path, 5.0, "a")
    report.out_dir.mkdir()
    stored = report.out_dir / "base.json"  # a baseline kept under a name of its own
    stored.write_text(json.dumps(report.to_dict()))
    (tmp_path / "file").write_text("")
    nowhere = tmp_path / "nowhere.json"
    for args, said in (
        ([str(nowhere), str(stored)], f"{nowhere}: no such file"),
        ([str(stored), str(stored), "-d", str(tmp_path / "file" / "sub")], "cannot write to"),
    ):
        result = CliRunner().invoke(main, ["diff", *args])
        assert result.exit_code in (1, 2) and "Traceback" not in result.output, result.output
        (line,) = result.output.strip().splitlines()  # before any table
        assert line.startswith("Error: ") and said in line, line
    result = CliRunner().invoke(main, ["diff", str(stored), str(stored), "-d", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert f"A: {stored} (" in result.output and f"B: {stored} (" in result.output
    assert json.loads((tmp_path / "d" / "compare-diff.json").read_text())["b"] == str(stored)


def test_two_instruction_runs_in_two_directories_were_measured_alike(tmp_path: Path) -> None:
    """The wrapper is recorded with DIR for the output directory: a baseline stored elsewhere
    is not 'measured differently' for its path alone."""
    from harness.experiments.compare.plan import CompareRequest, plan_compare

    settings = [
        plan_compare(
            CompareRequest(
                targets=["raw-asgi"],
                sets=[()],
                measures=("instructions",),
                ceiling=False,
                out_dir=tmp_path / name,
            )
        ).settings()
        for name in ("a", "b")
    ]
    assert settings[0].wrapper == settings[1].wrapper
    assert any("DIR/callgrind" in arg for arg in settings[0].wrapper)
