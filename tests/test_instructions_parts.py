"""`--measure instructions` split into work per request and work per second (issue 33): the
arithmetic, what a round stores and how compare.json loads back with and without the parts, the
flag and the note for a large time part; and one short round of a real server under callgrind."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness.errors import RunError
from harness.experiments.compare.contenders import Contender, Entry, Round, link
from harness.experiments.compare.render import write_report
from harness.experiments.compare.render_notes import notes
from harness.experiments.compare.result import CompareReport, CompareSettings
from harness.experiments.compare.run import compare
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.measures.callgrind import read_dump
from harness.measures.instructions import (
    IDLE_MAX_S,
    IDLE_MIN_S,
    CallgrindInstructions,
    Parts,
    idle_length,
)
from harness.measures.measure import WireRound
from harness.serving.settings import ServeSettings
from targets.table import get_target

N = 600
PER_REQUEST = 181_000.0  # Starlette's none, about
PER_SECOND = 215_000.0  # what a Starlette server under callgrind does a second, idle


def _wire(extra: dict[str, Any], requests: int = N) -> WireRound:
    """Just what `read_figures` looks at: the measured level's extra and its requests."""
    return cast(WireRound, SimpleNamespace(peak=SimpleNamespace(extra=extra, requests=requests)))


def _extra(window_s: float, idle_s: float = 1.0) -> dict[str, Any]:
    """What the probe adds to a level whose window lasted `window_s`."""
    return {
        "instructions": PER_REQUEST * N + PER_SECOND * window_s,
        "instructions_by_pid": {},
        "window_s": window_s,
        "idle_instructions": PER_SECOND * idle_s,
        "idle_s": idle_s,
    }


def test_the_count_per_request_is_the_window_less_its_time_part_over_n() -> None:
    parts = Parts(
        requests=N, window=109_030_000.0, window_s=2.0, idle=236_500.0, idle_s=1.1, shim=900_000.0
    )
    assert parts.per_second == pytest.approx(215_000.0)
    assert parts.time_part == pytest.approx(430_000.0)
    assert parts.per_request == pytest.approx((109_030_000.0 - 430_000.0) / N)
    assert parts.time_share == pytest.approx(430_000.0 / 109_030_000.0)
    values = parts.values("instructions")
    # the figure and its time part add up to what the figure was before: the window over N
    assert values["instructions"] + values["instructions.time_part"] == pytest.approx(
        109_030_000.0 / N
    )
    assert {k for k in values if k != "instructions"} == {
        f"instructions.{part}"
        for part in (
            "time_part", "window", "window_s", "idle", "idle_s", "per_s", "requests", "shim"
        )
    }  # fmt: skip
    assert values["instructions.shim"] == 1_500.0  # per request, left out of the window already
    assert Parts.from_values(values, "instructions") == parts
    assert Parts.from_values({"instructions": 181_000.0}, "instructions") is None  # stored before


def test_a_window_twice_as_long_leaves_the_figure_where_it_was() -> None:
    measure = CallgrindInstructions()
    quick, slow = (measure.read_figures(_wire(_extra(s))) for s in (1.1, 2.2))
    assert quick["instructions"] == pytest.approx(PER_REQUEST, rel=1e-12)
    assert slow["instructions"] == pytest.approx(PER_REQUEST, rel=1e-12)
    # what it read before, the window over N: 1.1 s more of 215,000 a second, +0.22%
    before = [f["instructions"] + f["instructions.time_part"] for f in (quick, slow)]
    assert before[1] - before[0] == pytest.approx(PER_SECOND * 1.1 / N)


def test_without_an_idle_window_the_figure_is_the_window_over_n() -> None:
    measure = CallgrindInstructions()
    plain = {"instructions": 108_000_000}  # instructions-perf's probe, or a level of old
    assert measure.read_figures(_wire(plain)) == {"instructions": 180_000.0}
    assert measure.read_figures(_wire({**_extra(1.0), "idle_s": 0.0})) == {
        "instructions": pytest.approx((PER_REQUEST * N + PER_SECOND) / N)
    }
    assert measure.read_figures(_wire({}, requests=N)) == {}


def test_the_idle_window_is_as_long_as_the_loaded_one_within_bounds() -> None:
    assert idle_length(0.1) == IDLE_MIN_S
    assert idle_length(0.6) == 0.6
    assert idle_length(60.0) == IDLE_MAX_S


def _report(window_s: list[float], stored_before: bool = False) -> CompareReport:
    """Starlette's none against raw-asgi, a round per window length; stored before issue 33's
    parts with `stored_before` (the figure only)."""
    measure = CallgrindInstructions()
    rounds = []
    for repeat, seconds in enumerate(window_s, 1):
        values = measure.read_figures(_wire(_extra(seconds)))
        if stored_before:
            values = {"instructions": values["instructions"] + values["instructions.time_part"]}
        rounds.append(Round(repeat, "ok", values=values, peak_qps=500.0))
    starlette, raw = get_target("starlette"), get_target("raw-asgi")
    entries = link(
        [
            Entry(Contender(starlette, (), "set"), "none", rounds),
            Entry(Contender(raw, (), "baseline"), "raw-asgi:none", rounds),
        ]
    )
    return CompareReport(
        targets=["starlette"],
        baselines=["raw-asgi"],
        entries=entries,
        settings=CompareSettings(),
        out_dir=Path(),
        measures=("instructions",),
    )


def test_a_time_part_over_one_percent_is_flagged_and_said_in_the_notes() -> None:
    # at 215,000 a second, 1% of 600 requests of 181,000 is a window of 5 s
    usual = _report([1.1, 2.2])
    assert not any("time part" in flag for flag in usual.flags(usual.entries[0]))
    assert not any("work per second" in line for line in notes(usual))
    slow = _report([1.1, 6.0])
    (flag,) = slow.flags(slow.entries[0])
    assert flag == "time part 1.2% of the count"
    (line,) = [line for line in notes(slow) if "work per second" in line]
    assert line.startswith("Ir: the server's work per second")
    assert "none 1.2% (215,000/s); raw-asgi:none 1.2% (215,000/s)" in line


def test_a_compare_json_stored_before_the_parts_loads_as_it_was(tmp_path: Path) -> None:
    report = _report([1.1, 2.2], stored_before=True)
    data = report.to_dict()
    (tmp_path / "compare.json").write_text(json.dumps(data))
    loaded = CompareReport.load(tmp_path / "compare.json")
    none = loaded.find("none")
    assert none is not None
    assert none.values("instructions") == report.entries[0].values("instructions")
    assert [Parts.from_values(r.values, "instructions") for r in none.ok_rounds] == [None, None]
    assert loaded.flags(none) == [] and not any("work per second" in n for n in notes(loaded))


@pytest.mark.slow
def test_a_round_stores_both_parts_and_they_make_its_figure(tmp_path: Path) -> None:
    """One round of raw-asgi under callgrind, a window of 100 requests: the loaded window, its
    length, the idle window after it, and the figure made of them, in compare.json."""
    cpus = plan()
    report = compare(
        targets=["raw-asgi"],
        sets=[()],
        baseline=False,
        measures=("instructions",),
        repeat=1,
        ceiling=False,
        serve=ServeSettings(cpus=cpus.server),
        load=LoadSettings(cpus=cpus.load, requests=100),
        out_dir=tmp_path,
        echo=lambda line: None,
    )
    write_report(report)
    # no chart over concurrency of a counted window: one level, callgrind's pace, no latency
    assert not list(tmp_path.glob("raw-asgi*.png"))
    data = json.loads((tmp_path / "compare.json").read_text())
    (entry,) = data["sets"] + data["baselines"]
    (one,) = entry["rounds"]
    values = one["values"]
    swept = json.loads(Path(one["files"]).read_text())
    window = swept["levels"][-1]
    # sent one request at a time, each to a blocked server (harness.load.paced), and said so
    assert data["settings"]["paced"] is True and swept["settings"]["paced"] is True
    assert window["command"][0] == "paced" and "sent_busy" not in window["extra"]
    assert not list(tmp_path.glob("*.lua"))  # no wrk script: wrk sends none of it
    extra = window["extra"]
    # the parts as the probe counted them
    assert values["instructions.window"] == extra["instructions"]
    assert values["instructions.idle"] == extra["idle_instructions"] > 0
    assert values["instructions.requests"] == window["requests"] == 100
    # the window's length, dump to dump, against wrk's own; the idle window as long, within
    # its bounds (a dump comes 0.1-0.2 s after it is asked for)
    assert 0.5 * window["duration_s"] < values["instructions.window_s"] < window["duration_s"] + 2
    wanted = idle_length(values["instructions.window_s"])
    assert wanted - 0.05 < values["instructions.idle_s"] < wanted + 2
    b = values["instructions.per_s"]
    assert b == pytest.approx(values["instructions.idle"] / values["instructions.idle_s"])
    a = (values["instructions.window"] - b * values["instructions.window_s"]) / 100
    assert values["instructions"] == pytest.approx(a, rel=1e-12)
    assert values["instructions"] + values["instructions.time_part"] == pytest.approx(
        extra["instructions"] / 100, rel=1e-12
    )
    # raw-asgi's ticks: with its clock slowed a thousandfold, none falls in the windows (0.5%
    # of its count before, at 215,000 instructions a second); what is left, the dumps' own
    share = values["instructions.time_part"] / (extra["instructions"] / 100)
    assert 0 < share < 0.001
    assert "work per second" not in (tmp_path / "compare.md").read_text()
    # the slowed clock's own instructions (~180 a clock read) are out of the window's count
    assert values["instructions.shim"] == extra["shim_instructions"] / 100 > 50
    loaded = CompareReport.load(tmp_path / "compare.json")
    (back,) = loaded.entries
    assert back.rounds[0].values == pytest.approx(values)


def test_requests_sizes_the_paced_window_and_only_a_count_takes_it() -> None:
    from click.testing import CliRunner

    from harness.cli.build_settings import LoadOptions
    from harness.cli.main import main
    from harness.machine.cpus import CpuPlan

    measure = CallgrindInstructions()
    given = LoadOptions(requests=200).settings(
        CpuPlan(None, None), request=None, defaults=LoadSettings()
    )
    assert measure.prepare_load(given).requests == 200
    default = measure.prepare_load(LoadSettings())
    assert default.requests == 600 and default.paced and default.levels == (1,)
    refused = CliRunner().invoke(
        main, ["compare", "-t", "raw-asgi", "-m", "none", "--requests", "100"]
    )
    assert refused.exit_code == 2
    assert "sizes the window of --measure instructions" in refused.output
    assert "cpu, qps run for --duration" in refused.output


# A dump as callgrind writes it with --dump-line=no --dump-instr=no: names compressed to (N) after
# their first use, a `calls=` line followed by the call's inclusive cost.
DUMP = """\
# callgrind format
version: 1
positions: line
events: Ir
summary: 9390

ob=(1) /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
fl=(1) ???
fn=(1) clock_gettime
0 150
cob=(2) /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
cfi=(2) ./elf/tls_get_addr.S
cfn=(2) __tls_get_addr
calls=10 30
0 40
cob=(3) /usr/lib/x86_64-linux-gnu/libc.so.6
cfi=(3) ./time/clock_gettime.c
cfn=(3) clock_gettime@@GLIBC_2.17
calls=10 38
0 100
0 20

fn=(4) 0x0000000000003a10
0 30

ob=(4) /usr/lib/libpython3.11.so.1.0
fl=(4) ceval.c
fn=(5) _PyEval_EvalFrameDefault
0 9000
cob=(1)
cfi=(1)
cfn=(1)
calls=10 0
0 340
cob=(3)
cfi=(3)
cfn=(3)
calls=5 0
0 50

ob=(3)
fl=(3)
fn=(3)
0 150
ob=(2)
fl=(2)
fn=(2)
0 40
"""


def test_a_dump_leaves_the_slowed_clock_out_but_not_the_clock() -> None:
    """The shim's own instructions (150 + 20 + 30) and what it calls other than the function
    it stands in for (__tls_get_addr, 40) are left out; libc's clock_gettime, which the server
    calls anyway (100 through the shim, 50 directly), and the server's own are not."""
    total, shim = read_dump(DUMP)
    assert total == 9390 and shim == 150 + 20 + 30 + 40
    without = DUMP.replace("libfaketime", "libother")
    assert read_dump(without) == (9390, 0)
    with pytest.raises(RunError, match="without a summary"):
        read_dump(DUMP.replace("summary: 9390\n", ""), "cg.1.2")
