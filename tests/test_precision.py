"""`compare --precision --budget`: the stopping rule on a stand-in, then one real short run."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli.main import main
from harness.measure.contenders import Contender, Entry
from harness.measure.rounds import Precision, Schedule, missed
from harness.measure.stats import Estimate
from targets.table import get_target


def _entries() -> list[Entry]:
    """raw-asgi, then none (against raw-asgi) and two sets (against none)."""
    starlette, raw = get_target("starlette"), get_target("raw-asgi")
    base = Entry(Contender(raw, (), "baseline"), "raw-asgi:none", [])
    none = Entry(Contender(starlette, (), "set"), "none", [], reference=base)
    dump = Entry(Contender(starlette, ("dump",), "set"), "dump", [], reference=none)
    cors = Entry(Contender(starlette, ("cors",), "set"), "cors", [], reference=none)
    return [none, dump, cors, base]


def _widths(entries: list[Entry], **half: float) -> None:
    for entry in entries:
        if entry.label in half:
            h = half[entry.label]
            entry.overhead_cpu = Estimate(10.0, 10.0 - h, 10.0 + h, 5)


def test_a_set_is_not_precise_on_three_lucky_rounds() -> None:
    entries = _entries()
    precision = Precision(target_us=2.0, budget_s=600)
    entries[1].overhead_cpu = Estimate(10.0, 9.5, 10.5, 3)
    assert not precision.met_by(entries[1])
    entries[1].overhead_cpu = Estimate(10.0, 9.5, 10.5, 5)
    assert precision.met_by(entries[1])


def test_a_headline_clear_of_zero_may_stop_at_the_fixed_rounds() -> None:
    entries = _entries()
    headline = Precision(target_us=1.0, budget_s=600, relative=0.5)
    entries[1].overhead_cpu = Estimate(100.0, 60.0, 140.0, 3)  # ±40 on 100: clear of zero, 2.5×
    assert headline.met_by(entries[1])
    entries[1].overhead_cpu = Estimate(100.0, 40.0, 160.0, 3)  # ±60: significant, not by 2×
    assert not headline.met_by(entries[1])
    entries[1].overhead_cpu = Estimate(100.0, 60.0, 140.0, 2)  # under the fixed rounds
    assert not headline.met_by(entries[1])


def test_fixed_rounds_measure_everyone_then_stop() -> None:
    schedule = Schedule(_entries(), repeat=2)
    assert schedule.next(0.0) == [0, 1, 2, 3]
    assert schedule.next(0.0) == [0, 1, 2, 3]
    assert schedule.next(0.0) == []


def test_precise_rounds_go_to_the_wide_sets_and_their_references() -> None:
    entries = _entries()
    schedule = Schedule(entries, repeat=1, precision=Precision(target_us=2.0, budget_s=600))
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
    schedule = Schedule(entries, repeat=3, precision=Precision(target_us=2.0, budget_s=100))
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
    assert spin["rounds_used"] >= 3 and spin["half_width_us"] > 0.001
    assert data["precision_missed"] and data["settings"]["precision_us"] == 0.001
    # --precision without --duration or --warmup: 1 s rounds, no warm-up
    assert (data["settings"]["duration_s"], data["settings"]["warmup_s"]) == (1.0, 0.0)
    assert data["wall_s"] < 12 + 8  # the budget bounds the rounds (one run may overrun it)


def test_the_overhead_chart_says_how_many_rounds_the_sets_had() -> None:
    from harness.output.compare_report import rounds_used

    entries = _entries()
    assert rounds_used(entries) == "0"
    for entry, n in zip(entries, (3, 7, 3, 5), strict=True):
        entry.overhead_cpu = Estimate(10.0, 9.0, 11.0, n)
    assert rounds_used(entries) == "3-7"
    assert rounds_used(entries[2:3]) == "3"


def test_precision_rounds_are_short_unless_the_user_chose_their_length() -> None:
    import click

    from harness.cli.params import (
        apply_precision,
        duration_option,
        precision_options,
        warmup_option,
    )

    seen: dict[str, object] = {}

    @click.command()
    @duration_option
    @warmup_option
    @precision_options
    def command(precision: float | None, budget: float, **options: object) -> None:
        apply_precision(precision, budget, options)
        seen.update(options)

    def run(*args: str) -> tuple[object, object, object]:
        seen.clear()
        result = CliRunner().invoke(command, list(args))
        assert result.exit_code == 0, result.output
        return seen["duration"], seen["warmup"], seen.get("precision")

    fixed = run()
    assert fixed[:2] != (1.0, 0.0) and fixed[2] is None  # without --precision: the defaults
    duration, warmup, precision = run("--precision", "2us", "--budget", "90s")
    assert (duration, warmup) == (1.0, 0.0)
    assert precision == Precision(target_us=2.0, budget_s=90.0)
    assert run("--precision", "2us", "--duration", "3s")[:2] == (3.0, 0.0)
    assert run("--precision", "2us", "--warmup", "2s")[:2] == (1.0, 2.0)
