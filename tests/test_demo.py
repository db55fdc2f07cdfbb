"""`harness demo --quick` end to end: real servers, real wrk, a report that carries the numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.compare.contenders import Contender, Entry, Round, link
from harness.experiments.compare.result import CompareReport, CompareSettings
from middleware.stack import ORDER, stack_name
from targets.table import TARGETS
from tests.synthetic import report_of, set_overheads, spread


def test_quick_demo_writes_a_report_with_the_measured_numbers(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--quick", "-d", str(tmp_path)])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()

    # Every framework was compared with its raw baseline, and the numbers in the report are
    # the ones in each comparison's compare.json.
    for target, baseline in (
        ("flask", "raw-wsgi"),
        ("starlette", "raw-asgi"),
        ("aiohttp", "raw-aiohttp"),
    ):
        data = json.loads((tmp_path / target / "compare.json").read_text())
        assert data["baseline"] == baseline
        full = next(s for s in data["sets"] if s["name"] == "all")
        pct = f"{full['pct_of_baseline']:.1f}%"
        assert f"with all seven middlewares it reached {pct}" in md
        assert f"{full['peak_qps']:,.0f}" in md
        assert f"{target} without middlewares reached" in page

    # Django over WSGI and over ASGI, each against its interface's raw baseline, and the hop
    for target, baseline in (("django", "raw-wsgi"), ("django-asgi", "raw-asgi")):
        data = json.loads((tmp_path / target / "compare.json").read_text())
        assert data["baseline"] == baseline
    assert "Django with no middleware costs" in md and "per request over ASGI" in md

    ceiling = json.loads((tmp_path / "ceiling" / "ceiling.json").read_text())
    peak = max(level["qps"] for level in ceiling["levels"] if level["status"] == "ok")
    assert f"ceiling on this machine is {peak:,.0f} req/s" in md

    # the server axis: each framework and its raw app on several servers, a chart, a finding
    on_servers = json.loads((tmp_path / "servers" / "starlette" / "compare.json").read_text())
    assert on_servers["servers"] == ["gunicorn-uvicorn", "granian"]
    granian = next(s for s in on_servers["sets"] if s["server"] == "granian")
    assert granian["reference"] == "granian:raw-asgi:none"
    assert f"granian {granian['peak_qps']:,.0f}" in md
    for target in ("flask", "starlette"):
        assert f"The same {target} app with no middleware, only the server changed" in md
    assert (tmp_path / "servers.png").stat().st_size > 10_000

    # latency at one arrival rate: the no-op middleware two ways, p99 from the open model
    assert (tmp_path / "latency" / "compare.json").exists(), result.output
    latency = json.loads((tmp_path / "latency" / "compare.json").read_text())
    rate = latency["settings"]["rates"][0]
    assert latency["measures"][0]["name"] == f"latency:p99@{rate:g}"
    assert f"At {rate:,.0f} requests a second, sent on a schedule" in md, result.output
    assert f"latency at {rate:,.0f} req/s" in md and "(k6 → ceiling)" in md

    # the profile of the costliest stack, the reference-value checks, embedded charts
    assert re.search(r"A py-spy profile of \w+ with [\w+-]+ under load", md)
    assert "Reference values" in md and "measured stacks pass" in md
    assert page.count("src='data:image/") >= 4
    assert (tmp_path / "frameworks.png").stat().st_size > 10_000
    # each compare's overhead chart, and no charts of single-level sweeps (seconds each)
    assert (tmp_path / "starlette" / "overhead.png").stat().st_size > 10_000
    assert not list(tmp_path.glob("*/*_latency.png"))
    assert "report.html" in result.output
    # the tour's steps in order, each at the margin, what each step measured indented below it
    steps = [line[:3] for line in result.output.splitlines() if re.match(r"\d/5 ", line)]
    assert steps == ["1/5", *["2/5"] * 6, *["3/5"] * 2, "4/5", "5/5"], result.output
    assert "    compare: 2 contenders × 1 round(s)" in result.output


def test_the_report_says_when_the_machine_inflates_event_loop_overheads(tmp_path: Path) -> None:
    from harness.experiments.demo.findings import findings
    from harness.experiments.demo.run import QUICK, DemoResult

    quiet = DemoResult(tmp_path, QUICK)
    assert not any("harness system tune" in f for f in findings(quiet))
    halting = DemoResult(tmp_path, QUICK, machine_note="note: idle CPUs halt at once")
    assert any("harness system tune" in f for f in findings(halting))


def _entry(target: str, server: str, role: str, qps: float, cpu: float) -> Entry:
    rounds = [
        Round(r, "ok", peak_qps=qps * (1 + d),
              values={"qps": 1e6 / (qps * (1 + d)), "cpu": cpu * (1 + d)})
        for r, d in ((1, 0.0), (2, 0.02), (3, -0.02))
    ]  # fmt: skip
    label = f"{server}:{target}:none" if role == "baseline" else f"{server}:none"
    return Entry(Contender(TARGETS[target], (), role, server), label, rounds, server)


def test_the_server_finding_is_written_from_the_numbers(tmp_path: Path) -> None:
    from harness.experiments.demo.run import FULL, DemoResult
    from harness.experiments.demo.server_axis import server_findings

    entries = [
        _entry("flask", "gunicorn-sync", "set", 1_000, 600.0),
        _entry("raw-wsgi", "gunicorn-sync", "baseline", 2_000, 400.0),
        _entry("flask", "granian", "set", 4_000, 200.0),
        _entry("raw-wsgi", "granian", "baseline", 30_000, 30.0),
    ]
    link(entries)
    report = report_of(entries, target="flask", out_dir=tmp_path)
    report.servers = ["gunicorn-sync", "granian"]
    result = DemoResult(tmp_path, FULL, server_reports=[report])
    (text,) = server_findings(result)
    assert "gunicorn-sync 1,000 req/s" in text and "granian 4,000 (4.0×)" in text
    assert "granian 15.0×" in text  # the raw app, against the first server
    assert "flask keeps 50% on gunicorn-sync, 13% on granian" in text
    assert "saves 400 ± " in text and text.endswith("of CPU per request.")
    # Against the framework's own middleware cost from the demo's compare of it:
    none = Entry(Contender(TARGETS["flask"], (), "set"), "none", [])
    full = Entry(Contender(TARGETS["flask"], ("dump",), "set"), "all", [], reference=none)
    set_overheads([none, full], {"all": spread(80.0, 10.0, 3)})
    result.reports.append(report_of([full, none], target="flask", out_dir=tmp_path))
    (text,) = server_findings(result)
    assert "more than all seven middlewares cost it (80 µs): the server is the bigger lever" in text


def test_dump_alone_is_stated_beside_the_full_stack_and_an_unclear_one_says_so(
    tmp_path: Path,
) -> None:
    from harness.experiments.demo.findings import findings
    from harness.experiments.demo.run import FULL, DemoResult

    def entry(stack: tuple[str, ...], role: str, cpu: list[float]) -> Entry:
        target = TARGETS["raw-asgi" if role == "baseline" else "starlette"]
        rounds = [
            Round(r, "ok", peak_qps=1e6 / c, values={"qps": c, "cpu": c})
            for r, c in enumerate(cpu, start=1)
        ]
        return Entry(Contender(target, stack, role), stack_name(stack), rounds)

    entries = [
        entry((), "set", [100.0, 102.0, 98.0]),
        entry(("dump",), "set", [150.0, 153.0, 147.0]),  # +50, tight
        entry(ORDER, "set", [100.0, 300.0, 160.0]),  # +86.7 ± 250: not clear of zero
        entry((), "baseline", [60.0, 61.0, 59.0]),
    ]
    link(entries)
    report = report_of(entries, out_dir=tmp_path)
    text = next(f for f in findings(DemoResult(tmp_path, FULL, reports=[report])) if "dump" in f)
    full = entries[2].overhead("cpu")
    dump = entries[1].overhead("cpu")
    assert full is not None and dump is not None and not full.significant and dump.significant
    assert (
        f"The full stack costs {full.format(1)} µs of server CPU time per request (not "
        "significantly "
        "different from zero at 95% in these rounds)." in text
    )
    share = 100 * dump.median / full.median
    assert text.endswith(f"dump alone costs {dump.format(1)} µs, {share:.0f}% of that.")


def test_the_tour_budget_gives_each_compare_its_fixed_rounds_and_a_slice_of_the_spare() -> None:
    from harness.experiments.demo.run import FULL, _headlines, _run_s

    assert _run_s([], FULL) == FULL.run_s()  # a guess, before anything was measured
    run_s = 1.4
    first = _headlines(FULL, 0, elapsed_s=5.0, run_s=run_s)
    assert first is not None and FULL.budget_s is not None
    fixed = [FULL.fixed_s(sets, run_s) for _, sets in FULL.comparisons]
    reserve = FULL.server_step_s(run_s) + FULL.latency_step_s() + FULL.profile_duration + 6.0
    spare = FULL.budget_s - 5.0 - reserve - sum(fixed)
    assert spare > 0
    # Starlette first: its fixed rounds and up to twice its slice, one of eight (Flask and
    # Django, on WSGI, get two each)
    assert first.budget_s == pytest.approx(fixed[0] + 2 * spare / 8)
    assert first.focus == {("dump",), ORDER} and first.clear_of_zero == 0.5
    # Flask last gets what is left of the budget once the axis and the profile are reserved
    last = _headlines(FULL, len(FULL.comparisons) - 1, elapsed_s=100.0, run_s=run_s)
    assert last is not None
    assert last.budget_s == pytest.approx(FULL.budget_s - 100.0 - reserve)
    # late, with nothing spare: the fixed rounds still run, nothing more
    late = _headlines(FULL, 1, elapsed_s=FULL.budget_s, run_s=run_s)
    assert late is not None and late.budget_s == pytest.approx(fixed[1])


def test_the_tour_times_a_round_by_the_rounds_it_measured(tmp_path: Path) -> None:
    from harness.experiments.demo.run import FULL, _run_s

    entries = [
        Entry(
            Contender(TARGETS["starlette"], (), "set"), "none", [Round(r, "ok") for r in (1, 2, 3)]
        ),
        Entry(Contender(TARGETS["raw-asgi"], (), "baseline"), "raw", [Round(1, "ok"), Round(2)]),
    ]
    report = report_of(entries, out_dir=tmp_path)
    report.wall_s = 6.0
    assert _run_s([report], FULL) == pytest.approx(6.0 / 4)  # the missing round took no time


def test_the_latency_lesson_gives_both_p99s_or_says_the_rate_was_not_sustained(
    tmp_path: Path,
) -> None:
    from harness.experiments.demo.findings import latency_lesson
    from harness.experiments.demo.run import BASEHTTP_NOOP, FULL, PURE_NOOP, DemoResult

    p99 = "latency:p99@500"

    def report(based_p99: float | None) -> CompareReport:
        def entry(stack: tuple[str, ...], value: float | None) -> Entry:
            values = {} if value is None else {p99: value}
            rounds = [Round(1, "ok", values={**values, "latency:behind@500": float(value is None)})]
            return Entry(Contender(TARGETS["starlette"], stack, "set"), stack[0], rounds)

        sets = [entry((PURE_NOOP,), 1.5), entry((BASEHTTP_NOOP,), based_p99)]
        settings = CompareSettings(
            rates=[500.0], generator={"rates": [{"rate": 500.0, "p99": 0.9}]}
        )
        return report_of(sets, out_dir=tmp_path, baselines=[], settings=settings, measures=(p99,))

    (text,) = latency_lesson(DemoResult(tmp_path, FULL, latency=report(2.25)))
    assert (
        "p99 from each request's intended start is 1.50 ms with the no-op middleware as pure"
        in text
    )
    assert "2.25 ms as a BaseHTTPMiddleware (k6's own p99 against the ceiling: 0.90 ms)" in text
    (text,) = latency_lesson(DemoResult(tmp_path, FULL, latency=report(None)))
    assert text.startswith("At 500 requests a second, sent on a schedule")
    assert "not sustained" in text and "ms with" not in text
