"""`harness demo --quick` end to end: real servers, real wrk, a report that carries the numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from harness.cli.main import main


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

    ceiling = json.loads((tmp_path / "ceiling" / "ceiling.json").read_text())
    peak = max(level["qps"] for level in ceiling["levels"] if level["status"] == "ok")
    assert f"ceiling on this machine is {peak:,.0f} req/s" in md

    # the profile of the costliest stack, the reference-value checks, embedded charts
    assert re.search(r"A py-spy profile of \w+ with [\w+-]+ under load", md)
    assert "Reference values" in md and "measured stacks pass" in md
    assert page.count("src='data:image/") >= 3
    assert (tmp_path / "frameworks.png").stat().st_size > 10_000
    assert "report.html" in result.output


def test_the_report_says_when_the_machine_inflates_event_loop_overheads(tmp_path: Path) -> None:
    from harness.tour.demo import QUICK, DemoResult
    from harness.tour.findings import findings

    quiet = DemoResult(tmp_path, QUICK)
    assert not any("harness system tune" in f for f in findings(quiet))
    halting = DemoResult(tmp_path, QUICK, machine_note="note: idle CPUs halt at once")
    assert any("harness system tune" in f for f in findings(halting))
