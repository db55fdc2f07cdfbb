"""The measure seam: a new measure is one class and one registration, and every part of compare
(rounds, overheads, the table, compare.json loaded back, the diff, the command line) takes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.compare.diff import Regression, diff_compares
from harness.experiments.compare.render import write_report
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.run import compare
from harness.measures.measure import Measure, WireRound, per_request
from harness.measures.registry import MEASURES, get_measure, register
from tests.conftest import pinned

# What `secure` adds to every answer, as it goes on the wire: three header lines.
SECURE_BYTES = len(
    b"X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"
    b"X-XSS-Protection: 1; mode=block\r\n"
)


class ResponseBytes(Measure):
    """A toy: the bytes wrk read per response, headers and body, off the same wrk run."""

    name: str = "bytes"
    unit: str = "B"
    title: str = "bytes read per response"
    short: str = "bytes"
    blind_to: str = "everything but the size of the answers"
    known_cost: str | None = None

    def read(self, wire: WireRound) -> float | None:
        return per_request(wire.peak.bytes_read, wire.peak.requests)


@pytest.fixture
def toy() -> Iterator[Measure]:
    measure = register(ResponseBytes())
    try:
        yield measure
    finally:
        MEASURES.pop(measure.name)


def test_a_toy_measure_goes_through_compare_its_report_and_the_diff(
    toy: Measure, tmp_path: Path
) -> None:
    report = compare(
        targets=["raw-asgi"], sets=[(), ("secure",)], baseline=False, measures=("bytes", "cpu"),
        repeat=2, ceiling=False, out_dir=tmp_path, echo=lambda line: None,
        **pinned(levels=(16,), duration=1.0, warmup=0.0),
    )  # fmt: skip
    write_report(report, charts=False)
    secure = report.find("secure")
    assert secure is not None
    overhead = secure.overhead("bytes")
    assert overhead is not None and overhead.n == 2
    # wrk counts bytes to two decimals of a MB: a fraction of a byte per response, at most
    assert overhead.median == pytest.approx(SECURE_BYTES, abs=1.0), overhead
    assert report.headline is toy
    table = (tmp_path / "compare.md").read_text()
    assert "B/req (bytes)" in table and "overhead B (bytes)" in table
    assert "bytes: bytes read per response, in B; blind to everything" in table
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["measures"][0]["name"] == "bytes"
    assert data["sets"][1]["overheads"]["bytes"]["median"] == overhead.median
    loaded = CompareReport.load(tmp_path / "compare.json")
    assert loaded.find("secure").overhead("bytes") == overhead  # type: ignore[union-attr]
    # The diff reads the toy's values: against a run where secure sent 40 B more a response
    # (the same rounds, each 40 B larger), that is its change; nothing else moved.
    later = CompareReport.load(tmp_path / "compare.json")
    grown = later.find("secure")
    assert grown is not None
    for one in grown.rounds:
        one.values["bytes"] += 40.0
    diff = diff_compares(loaded, later, Regression(30.0, "bytes"))
    assert {c.measure for c in diff.changes} == {"bytes", "cpu"}
    by = {(c.label, c.measure): c for c in diff.changes}
    moved = by[("secure", "bytes")]
    assert moved.quantity == "overhead" and moved.change is not None
    assert moved.change.median == pytest.approx(40.0)
    assert moved.pct == pytest.approx(100 * 40.0 / overhead.median)
    still = [by[("none", "bytes")].change, by[("secure", "cpu")].change]
    assert [c.median if c else None for c in still] == [0.0, 0.0]
    assert [c.label for c in diff.regressions] == ["secure"]  # +40 B over a 30 B gate
    assert diff_compares(loaded, later, Regression(50.0, "bytes")).regressions == []


def test_the_command_line_takes_a_registered_measure_and_names_the_valid_ones(
    toy: Measure, tmp_path: Path
) -> None:
    # The gate in the measure's own unit, both ways: nocache adds 149 B to each answer and
    # passes 200; secure+nocache adds 245 B and fails it, named alone.
    result = CliRunner().invoke(
        main,
        ["compare", "-t", "raw-asgi", "-m", "none,nocache,secure+nocache", "--no-baseline",
         "--no-ceiling", "--no-charts", "-c", "16", "--duration", "1s", "--warmup", "0",
         "--repeat", "1", "--measure", "bytes", "--max-overhead", "200", "-d", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "overhead B (bytes)" in result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert error.startswith("Error: overhead above --max-overhead: secure+nocache: "), error
    assert "; " not in error, error  # nocache, under the limit, is not named
    failures = json.loads((tmp_path / "compare.json").read_text())["gate_failures"]
    assert [f.split(":")[0] for f in failures] == ["secure+nocache"], failures
    bad = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "--measure", "bytes,watts"])
    assert bad.exit_code == 2
    valid = "cpu, qps, instructions, instructions-perf, latency, memory, bytes"
    assert f"unknown measure 'watts'; valid: {valid}" in bad.output
    # A gate in µs on a measure that counts bytes: said, before anything runs.
    wrong = CliRunner().invoke(
        main, ["compare", "-t", "raw-asgi", "--measure", "bytes", "--max-overhead", "5us"]
    )
    assert wrong.exit_code == 2
    assert "--max-overhead is a time, but the measure counts B" in wrong.output


def test_a_measure_name_is_registered_once() -> None:
    class Impostor(ResponseBytes):
        name = "cpu"

    with pytest.raises(ValueError, match="a measure named 'cpu' is already registered"):
        register(Impostor())
    assert get_measure("cpu").title == "server CPU time per request"
    with pytest.raises(ValueError, match="unknown measure 'watts'; valid: cpu, qps, instructions"):
        get_measure("watts")
