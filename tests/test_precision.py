"""`compare --precision --budget`: the stopping rule on a stand-in, then one real short run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.compare.contenders import Contender, Entry
from harness.experiments.compare.rounds import MAX_ROUNDS, Precision, Schedule, missed
from targets.table import get_target
from tests.synthetic import set_overheads, spread


def _entries() -> list[Entry]:
    """raw-asgi, then none (against raw-asgi) and two sets (against none)."""
    starlette, raw = get_target("starlette"), get_target("raw-asgi")
    base = Entry(Contender(raw, (), "baseline"), "raw-asgi:none", [])
    none = Entry(Contender(starlette, (), "set"), "none", [], reference=base)
    dump = Entry(Contender(starlette, ("dump",), "set"), "dump", [], reference=none)
    cors = Entry(Contender(starlette, ("cors",), "set"), "cors", [], reference=none)
    return [none, dump, cors, base]


def _widths(entries: list[Entry], _state: dict[str, float] | None = None, **half: float) -> None:
    """Five rounds each, the overheads 10 with these half-widths (the others' as they were)."""
    state = _WIDTHS.setdefault(id(entries), {})
    state.update(half)
    set_overheads(entries, {label: spread(10.0, h, 5) for label, h in state.items()})


_WIDTHS: dict[int, dict[str, float]] = {}


def _overhead(entries: list[Entry], index: int, center: float, half: float, n: int) -> None:
    set_overheads(entries, {entries[index].label: spread(center, half, n)})


def test_a_set_is_not_precise_on_three_lucky_rounds() -> None:
    entries = _entries()
    precision = Precision(target=2.0, budget_s=600)
    _overhead(entries, 1, 10.0, 0.5, 3)
    assert not precision.met_by(entries[1])
    _overhead(entries, 1, 10.0, 0.5, 5)
    assert precision.met_by(entries[1])


def test_a_headline_clear_of_zero_may_stop_at_the_fixed_rounds() -> None:
    entries = _entries()
    headline = Precision(target=1.0, budget_s=600, clear_of_zero=0.5)
    _overhead(entries, 1, 100.0, 40.0, 3)  # ±40 on 100: clear of zero, 2.5×
    assert headline.met_by(entries[1])
    _overhead(entries, 1, 100.0, 60.0, 3)  # ±60: significant, not by 2×
    assert not headline.met_by(entries[1])
    _overhead(entries, 1, 100.0, 40.0, 2)  # under the fixed rounds
    assert not headline.met_by(entries[1])


def test_a_precision_of_each_sets_own_cost() -> None:
    # ±0.1% of a cost of 110 (100 for raw-asgi, +10): a half-width of 0.11 is precise enough.
    entries = _entries()
    relative = Precision(target=0.001, budget_s=600, of_cost=True)
    _overhead(entries, 0, 10.0, 0.1, 5)
    assert relative.width_for(entries[0]) == pytest.approx(0.11)
    assert relative.met_by(entries[0])
    _overhead(entries, 0, 10.0, 0.2, 5)
    assert not relative.met_by(entries[0])
    assert relative.describe("instructions") == "±0.1% of each set's cost"


def test_fixed_rounds_measure_everyone_then_stop() -> None:
    schedule = Schedule(_entries(), repeat=2)
    assert schedule.next(0.0) == [0, 1, 2, 3]
    assert schedule.next(0.0) == [0, 1, 2, 3]
    assert schedule.next(0.0) == []


def test_precise_rounds_go_to_the_wide_sets_and_their_references() -> None:
    entries = _entries()
    schedule = Schedule(entries, repeat=1, precision=Precision(target=2.0, budget_s=600))
    for _ in range(3):  # at least three rounds of everyone, whatever --repeat says
        assert schedule.next(0.0) == [0, 1, 2, 3]
    schedule.run_s = [1.0] * 12
    _widths(entries, none=1.0, dump=9.0, cors=1.5)
    assert schedule.next(10.0) == [0, 1]  # dump, with none (its reference); not cors
    _widths(entries, none=3.0, dump=1.0, cors=1.5)
    assert schedule.next(12.0) == [0, 3]  # none, with raw-asgi
    _widths(entries, none=1.9)
    assert schedule.next(14.0) == []
    assert missed(entries, schedule.precision) == []  # type: ignore[arg-type]


def test_the_budget_goes_to_the_widest_and_then_stops() -> None:
    entries = _entries()
    schedule = Schedule(entries, repeat=3, precision=Precision(target=2.0, budget_s=100))
    for _ in range(3):
        schedule.next(0.0)
    schedule.run_s = [10.0] * 12
    _widths(entries, none=1.0, dump=4.0, cors=30.0)
    assert schedule.next(75.0) == [0, 2]  # 25 s left: two runs, cors (widest) and none
    assert schedule.next(95.0) == []  # no room for even one run
    assert schedule.budget_spent
    assert [m.split()[0] for m in missed(entries, schedule.precision)] == ["dump", "cors"]  # type: ignore[arg-type]


def test_a_real_run_stops_and_names_the_sets_that_missed(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["compare", "-t", "raw-asgi", "-m", "none,spin:20us", "--no-baseline", "--no-ceiling",
         "--no-charts", "-c", "16", "--precision", "0.001us", "--budget", "12s",
         "-d", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "±0.001 µs not reached within 12s: spin:20us" in result.output
    data = json.loads((tmp_path / "compare.json").read_text())
    spin = data["sets"][1]
    assert spin["rounds_used"] >= 3 and spin["half_width"] > 0.001
    assert data["precision_missed"] and data["precision"]["target"] == 0.001
    # --precision without --duration or --warmup: 1 s rounds, no warm-up
    assert (data["settings"]["duration_s"], data["settings"]["warmup_s"]) == (1.0, 0.0)
    # The budget ended the rounds, long before the loop's own bound (at ~1.5 s a contender's
    # round, 60 rounds would take three minutes): what stopped them, not how long they took.
    assert data["settings"]["budget_spent"] is True
    assert 3 <= data["settings"]["rounds"] < MAX_ROUNDS


def test_the_overhead_chart_says_how_many_rounds_the_sets_had() -> None:
    from harness.experiments.compare.render import rounds_used

    entries = _entries()
    assert rounds_used(entries) == "0"
    set_overheads(entries, {"none": spread(10.0, 1.0, 7), "dump": spread(10.0, 1.0, 3)})
    entries[2].rounds = entries[2].rounds[:3]  # cors: three rounds against none's seven
    assert rounds_used(entries) == "3-7"
    assert rounds_used(entries[2:3]) == "3"


def test_precision_rounds_are_short_unless_the_user_chose_their_length() -> None:
    import click

    from harness.cli.build_settings import LoadOptions, option_group
    from harness.cli.params import duration_option, warmup_option
    from harness.cli.rules import precision_from, precision_options, short_rounds

    seen: dict[str, object] = {}

    @click.command()
    @option_group("load", LoadOptions, duration_option, warmup_option)
    @precision_options
    def command(precision: Any, budget: float, load: LoadOptions) -> None:
        rule = precision_from(precision, budget, ("cpu",))
        if rule is not None:
            load = short_rounds(load)
        seen.update(duration=load.duration, warmup=load.warmup, precision=rule)

    def run(*args: str) -> tuple[object, object, object]:
        seen.clear()
        result = CliRunner().invoke(command, list(args))
        assert result.exit_code == 0, result.output
        return seen["duration"], seen["warmup"], seen.get("precision")

    fixed = run()
    assert fixed[:2] != (1.0, 0.0) and fixed[2] is None  # without --precision: the defaults
    duration, warmup, precision = run("--precision", "2us", "--budget", "90s")
    assert (duration, warmup) == (1.0, 0.0)
    assert precision == Precision(target=2.0, budget_s=90.0, measure="cpu")
    assert run("--precision", "0.1%")[2] == Precision(0.001, 180.0, "cpu", of_cost=True)
    assert run("--precision", "2us", "--duration", "3s")[:2] == (3.0, 0.0)
    assert run("--precision", "2us", "--warmup", "2s")[:2] == (1.0, 2.0)


def test_default_rounds_give_every_set_an_interval_then_go_to_the_ones_near_zero() -> None:
    from harness.experiments.compare.rounds import DEFAULT_BUDGET_S, default_rounds

    entries = _entries()
    rule = default_rounds("cpu")
    assert rule.budget_s == DEFAULT_BUDGET_S and not rule.required
    schedule = Schedule(entries, repeat=1, precision=rule)
    for _ in range(3):  # three of everyone: the fewest on which Student's t is worth printing
        assert schedule.next(0.0) == [0, 1, 2, 3]
    schedule.run_s = [1.0] * 12
    # none and dump clear of zero by more than twice their half-width; cors touches zero
    _overhead(entries, 0, 30.0, 5.0, 3)
    _overhead(entries, 1, 80.0, 10.0, 3)
    _overhead(entries, 2, 1.0, 4.0, 3)
    assert schedule.next(12.0) == [0, 2]  # cors, with none (its reference)
    assert [m.split()[0] for m in missed(entries, rule)] == ["cors"]
    _overhead(entries, 2, 1.0, 4.0, 4)
    assert schedule.next(DEFAULT_BUDGET_S - 0.5) == []  # the minute is spent
    assert schedule.budget_spent


def test_default_rounds_unless_repeat_or_precision_says() -> None:
    import click

    from harness.cli.build_settings import LoadOptions, option_group
    from harness.cli.params import duration_option, warmup_option
    from harness.cli.rules import precision_from, precision_options, short_rounds

    seen: dict[str, object] = {}

    @click.command()
    @click.option("--repeat", "-r", type=int, default=1)
    @option_group("load", LoadOptions, duration_option, warmup_option)
    @precision_options
    def command(precision: Any, budget: float | None, repeat: int, load: LoadOptions) -> None:
        seen["rule"] = precision_from(precision, budget, ("cpu",), by_default=True)
        if seen["rule"] is not None:
            load = short_rounds(load)
        seen.update(duration=load.duration, warmup=load.warmup)

    def run(*args: str) -> Any:
        seen.clear()
        result = CliRunner().invoke(command, list(args))
        assert result.exit_code == 0, result.output
        return seen["rule"]

    default = run()
    assert default is not None and not default.required and default.budget_s == 60.0
    assert (seen["duration"], seen["warmup"]) == (1.0, 0.0)
    assert run("--budget", "20s").budget_s == 20.0
    assert run("-r", "1") is None and run("--repeat", "5") is None  # the user chose
    assert run("--precision", "2us").required


def test_one_round_says_it_has_no_interval() -> None:
    from harness.experiments.compare.render import _interval_said
    from harness.stats.intervals import Estimate

    assert Estimate(87.3, None, None, 1).format_change() == "+87.3 (no interval)"
    assert Estimate(87.3, 80.0, 94.6, 3).format_change() == "+87.3 ± 7.3"
    entries = _entries()
    set_overheads(entries, {"none": [10.0], "dump": [5.0], "cors": [1.0]})
    assert _interval_said(entries, ("cpu",)) == "1 round: no interval"
    set_overheads(entries, {"none": spread(10.0, 1.0, 3)})
    assert "error bars: 95% interval" in _interval_said(entries, ("cpu",))


def test_a_compare_with_no_repeat_prints_intervals(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["compare", "-t", "raw-asgi", "-m", "none,dump", "--no-baseline", "--no-ceiling",
         "--no-charts", "-c", "16", "--budget", "8s", "-d", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # the default's goal is not a gate
    data = json.loads((tmp_path / "compare.json").read_text())
    dump = data["sets"][1]
    assert data["settings"]["rounds"] >= 3 and dump["rounds_used"] >= 3
    assert dump["overheads"]["cpu"]["half_width"] is not None and dump["half_width"] > 0
    assert data["precision"]["required"] is False
    assert "(no interval)" not in result.output and "±" in result.output
    assert "for tighter intervals" in result.output
