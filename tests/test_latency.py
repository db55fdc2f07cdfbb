"""The open model on the real k6 and real servers on loopback: a stall that wrk's closed loop
hides shows in k6's latencies from each request's intended start; the latency measure and the
capacity search run end to end; a rate of 0, an SLO that does not parse and a rate above what
k6 can send are one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.image
import psutil
import pytest
from click.testing import CliRunner

import harness.render.charts
from harness.cli.main import main
from harness.experiments.compare.capacity import search
from harness.experiments.compare.contenders import Contender, Entry, link
from harness.experiments.compare.render_latency import hockey_chart
from harness.experiments.compare.result import CompareSettings
from harness.experiments.sweep.run import sweep
from harness.load.k6 import RateResult, run_k6, run_k6_kept
from harness.load.settings import LoadSettings
from harness.load.wrk_output import WrkResult
from harness.measures.latency import PERCENTILES
from harness.measures.slo import parse_slo
from harness.serving.apps import describe_app, target_for
from harness.serving.servers import RunningServer, running
from harness.serving.settings import ServeSettings
from harness.serving.userapp.spec import AppSpec
from targets.table import get_target
from tests.fixtures.apps import stall_once
from tests.fixtures.apps.stall import STALL_S
from tests.synthetic import BASE, report_of, set_overheads

ROOT = Path(__file__).resolve().parents[1]
STALL = "tests/fixtures/apps/stall.py:app"
SERVER_CPUS, LOAD_CPUS = (0,), (1,)

pytestmark = pytest.mark.slow


@pytest.fixture
def stalling() -> Iterator[RunningServer]:
    """The stall app (20 ms of blocked event loop every 100 requests) on a fresh server."""
    info = describe_app(AppSpec(STALL, False, str(ROOT)))
    serve = ServeSettings(cpus=SERVER_CPUS, log_output="null")
    with running(target_for(info), serve, stack=info.layer_names) as server:
        yield server


def _k6_left() -> list[str]:
    """k6 processes this test process started (run_k6 starts each as its child) still there:
    not a scan of the machine, where another engineer's or CI job's k6 may run."""
    left = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name() == "k6":
                left.append(f"{proc.pid} {proc.status()}")
        except psutil.Error:  # gone meanwhile: not left
            continue
    return left


def test_a_stall_shows_in_the_open_model_as_arithmetic_says_and_wrk_answers_another_question(
    stalling: RunningServer, tmp_path: Path
) -> None:
    """At 1,000 req/s a 20 ms stall comes every 100 ms: a fifth of the requests arrive during
    one and wait U(0, 20) ms, so p90 is about 10 ms and p99 about 19, plus the answer itself.
    wrk, beside, sends as fast as the answers come: not 1,000 req/s but its own rate, at which
    the server is stalled most of the time; on one connection 99 requests in 100 find it free
    (its p50 a fraction of a ms, its p90 wrk's own coordinated-omission correction), on 64 every
    request waits behind a stall (p50 near 20 ms). docs/latency.md has the table.

    The same app without its layer, at the same rate just before, is the pair every figure is
    read against: a slow VM slows both, and moves no stall (a sleep of 20 ms of wall time)."""
    stall_ms = STALL_S * 1000
    info = describe_app(AppSpec(STALL, False, str(ROOT)))
    serve = ServeSettings(cpus=SERVER_CPUS, log_output="null")
    with running(target_for(info), serve, stack=()) as server:  # the app is a plain function
        plain = run_k6_kept(f"{server.url}/healthz", rate=1000, duration=2, cpus=LOAD_CPUS)
    assert plain.status == "ok" and plain.failed == 0, plain.reason
    url = f"{stalling.url}/healthz"
    run_k6(url, rate=1000, duration=1, cpus=LOAD_CPUS)  # warm-up
    opened = run_k6_kept(url, rate=1000, duration=4, cpus=LOAD_CPUS)
    assert opened.status == "ok", opened.reason
    assert opened.p50 is not None and opened.p90 is not None and opened.p99 is not None
    assert plain.p90 is not None and plain.p99 is not None
    # A fifth of the requests meet a stall, at U(0, 20) ms: p90 ~10 ms and p99 ~19 above the
    # plain app's; from below, since waiting adds to the answer (and a slow VM only adds).
    assert opened.p90 - plain.p90 > stall_ms / 4, (opened, plain)
    assert opened.p99 - plain.p99 > stall_ms * 0.7, (opened, plain)
    # ... and no backlog beyond it (k6 kept its schedule): within two stalls of the plain app's
    assert opened.p99 < plain.p99 + 2 * stall_ms, (opened, plain)
    assert opened.p50 < opened.p90 / 2  # the median request meets no stall

    def closed(connections: int) -> WrkResult:
        load = LoadSettings(levels=(connections,), duration=2, warmup=0, cpus=LOAD_CPUS)
        swept = sweep(url=url, name=f"c{connections}", out_dir=tmp_path, progress=False, load=load)
        assert swept.peak is not None and swept.peak.p50_ms is not None
        return swept.peak

    one, many = closed(1), closed(64)
    # The closed loop's rate is the server's: above the 1,000 req/s it sustained for k6.
    assert many.qps > 1000, many
    assert one.p50_ms is not None and many.p50_ms is not None
    # 64 in flight: each is served after up to 63 others and waits out the stall that comes
    # every 100 (at least 0.64 x 20 ms, whatever the speed); on one, 99 in 100 find it free.
    assert many.p50_ms > 0.6 * stall_ms, many
    assert one.p50_ms * 5 < many.p50_ms, (one, many)
    assert many.p50_ms > 5 * opened.p50


@pytest.fixture
def stalls_once() -> Iterator[str]:
    """A single-threaded server with a backlog of one that stalls once (its STALL_AT-th request
    sleeps STALL_S), on an ephemeral loopback port; the URL."""
    proc = subprocess.Popen(
        [sys.executable, stall_once.__file__], stdout=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}/"
    finally:
        proc.kill()
        proc.wait(10)


def test_requests_that_could_not_be_sent_during_a_stall_are_timed_from_when_they_were_due(
    stalls_once: str,
) -> None:
    """Coordinated omission where k6 keeps its schedule: at 50 req/s the server stalls 400 ms,
    and the ~20 requests due meanwhile cannot connect (its backlog holds one; the kernel drops
    their SYN and the client sends it again a second later). Send-to-answer time (k6's
    http_req_duration) starts after the connection, and sees nothing of that wait: its p90 is
    a free server's. From each request's intended start, a fifth of the requests waited at
    least the stall (p90 and p99 above it). A parser that read http_req_duration fails here."""
    stall_ms = stall_once.STALL_S * 1000
    run = run_k6(stalls_once, rate=50, duration=2, cpus=LOAD_CPUS)
    # k6 kept its schedule: every request was started on time, on a free VU
    assert run.dropped == 0 and run.requests >= 100 and run.failed == 0, run
    assert run.late_p99 is not None and run.late_p99 < stall_ms / 4, run
    assert run.p90 is not None and run.p99 is not None
    assert run.http_p50 is not None and run.http_p99 is not None
    assert run.p90 >= stall_ms and run.p99 >= stall_ms, run  # the wait to connect, counted
    assert run.p99 - run.http_p99 >= stall_ms, run  # ... and not in send-to-answer time


def test_capacity_is_found_under_the_stall(stalling: RunningServer) -> None:
    """p99 < 15 ms: never at 1,000 req/s and above (the stall alone costs ~19 ms), so the search
    comes down to the SLO's least rate and finds none; p99 < 60 ms (three stalls: room for a
    slow VM's own milliseconds) holds at some rate, and not at 6,000, where the stalls alone would
    take 120% of every second: a queue that grows whatever the machine's speed."""
    url = f"{stalling.url}/healthz"

    def probe(rate: float) -> RateResult:
        return run_k6_kept(url, rate=rate, duration=1.5, cpus=LOAD_CPUS)

    none = search(probe, parse_slo("p99<15ms,qps>=1000"), peak=6000, max_probes=3)
    # "generator" when k6 itself was late at 1,000 req/s three runs in a row (a stalled VM)
    assert none.capacity is None and none.bound in ("none", "generator"), none.probes
    assert [p["rate"] for p in none.probes] == [6000, 1000]
    found = search(probe, parse_slo("p99<60ms,success>=99.95%"), peak=6000, max_probes=4)
    rates = [p["rate"] for p in found.probes]
    # 6,000 req/s would stall the server 120% of the time: missed on any machine (4,000, 80%
    # plus the answers, was met on a fast one); an eighth of it, 750, meets the 20 ms stalls
    # (p99 ~20 ms) within 60 ms; then two halvings of the bracket,
    # which 4 probes leave wider than 5% of the top.
    assert rates[:2] == [6000, 750] and len(rates) == 4, found.probes
    assert not found.probes[0]["within"] and found.probes[1]["within"], found.probes
    assert found.capacity is not None and 750 <= found.capacity < 6000
    within = [p["rate"] for p in found.probes if p["within"]]
    assert max(within) == found.capacity
    # the bracket: every rate probed above the capacity missed, the lowest of them is said
    assert all(not p["within"] for p in found.probes if p["rate"] > found.capacity)
    assert found.missed_at == min(r for r in rates if r > found.capacity)
    assert found.bound in ("server", "generator")  # k6 may be late at 6,000 req/s itself


def test_compare_measures_latency_per_set_with_the_generator_beside(tmp_path: Path) -> None:
    out = tmp_path / "lat"
    result = CliRunner().invoke(main, [
        "compare", "-t", "starlette", "-m", "none,request-id", "--rate", "500,1000", "-r", "2",
        "--duration", "1s", "--slo", "p99<100ms,qps>=500", "-d", str(out),
        "--no-baseline",  # a third contender's rounds and capacity search: 18 s, nothing new
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "compare.json").read_text())
    names = [m["name"] for m in data["measures"]]
    assert names[:2] == ["latency:p99@500", "latency:p99@1000"]
    assert "latency:p50@500" in names and "latency:errors@1000" in names
    generator = data["settings"]["generator"]
    assert generator["limit"] > 1000 and [f["rate"] for f in generator["rates"]] == [500, 1000]
    labels = data["order"]
    assert labels == ["none", "request-id"]
    timed = 0
    for entry in [*data["sets"], *data["baselines"]]:
        ok = [r for r in entry["rounds"] if r["status"] == "ok"]
        assert len(ok) == 2
        for one in ok:
            got = one["values"]
            # k6 itself behind three runs in a row (a stalled VM): a rate with no latency, said
            if got.get("latency:behind@500"):
                assert "latency:p50@500" not in got
                continue
            assert got["latency:achieved@1000"] > 990 or got.get("latency:behind@1000")
            assert 0 < got["latency:p50@500"] <= got["latency:p99@500"]
            timed += 1
    assert timed >= 4, "most rounds kept their schedule"
    capacity = data["settings"]["capacity"]
    assert set(capacity) == set(labels)
    for one in capacity.values():
        assert 1 <= len(one["probes"]) <= 7
        if one["bound"] == "generator" and one["capacity"] is None:
            # k6 itself late at the least rate (a probe runs once: a loaded VM's stall), said
            # as the generator's, not taken for a server without capacity
            assert one["probes"][-1]["status"] == "behind", one
            continue
        # the SLO's least rate, 500 req/s, is sustained as the measured rounds were
        assert one["capacity"] and 500 <= one["capacity"] <= one["closed_peak"], one
    assert "latency at 1,000 req/s" in result.output and "(k6 → ceiling)" in result.output
    for chart in ("latency.png", "p99.png"):
        height, width, _ = matplotlib.image.imread(out / chart).shape
        assert width > 400 and height > 200, (chart, width, height)
    # k6's own summary of each run is the one the round's figures were read from
    first = next(r for r in data["sets"][0]["rounds"] if r["repeat"] == 1)
    kept = json.loads((out / "starlette_none_r1_500rps.k6.json").read_text())["metrics"]
    if first["status"] == "ok" and "latency:p99@500" in first["values"]:
        assert first["values"]["latency:p99@500"] == pytest.approx(
            kept["intended"]["values"]["p(99)"], rel=1e-9
        )
    requests = kept["http_reqs"]["values"]["count"]  # in a run of 1 s
    assert first["values"]["latency:achieved@500"] == pytest.approx(requests, rel=0.02)
    assert _k6_left() == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--rate", "0"], "a rate is more than 0"),
        (["--rate", "1000,50%"], "not both"),
        (["--rate", "812.5"], "rates are whole requests a second"),
        (["--rate", "inf"], "a rate is a finite number"),
        (["--rate", "1e400%"], "a rate is a finite number"),
        (["--rate", "1000", "--measure", "cpu"], "--measure: an arrival rate is the open model"),
        (["--max-overhead-us", "5", "--measure", "qps"], "--max-overhead-us gates server CPU"),
        (["--max-overhead-us", "nan"], "not a finite number"),
        (["--max-overhead-us", "inf"], "not a finite number"),
        (["--max-overhead-us", "-inf"], "not a finite number"),
        (["--max-leak", "nan"], "not a finite number"),
        (["--precision", "nan"], "not a finite amount"),
        (["--slo", "p99<fast"], "cannot read the SLO rule 'p99<fast'"),
        (["--slo", "p99<50"], "give p99 a time"),
    ],
)
def test_bad_rates_slos_and_limits_are_one_line_errors(args: list[str], said: str) -> None:
    result = CliRunner().invoke(main, ["compare", "-t", "starlette", "-m", "none", *args])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and said in errors[0], result.output
    assert "Traceback" not in result.output


def test_a_bare_number_in_any_notation_is_the_measures_own_unit() -> None:
    from harness.cli.rules import Quantity, QuantityType

    amount = QuantityType()
    assert amount.convert("1e3", None, None) == Quantity(1000.0, None)  # not 1e3 seconds
    assert amount.convert("5000", None, None) == Quantity(5000.0, None)
    assert amount.convert("2us", None, None) == Quantity(2.0, "µs")
    assert amount.convert("1ms", None, None) == Quantity(1000.0, "µs")
    assert amount.convert("0.5%", None, None) == Quantity(0.005, "%")


def test_a_rate_above_what_k6_can_send_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "compare", "-t", "starlette", "-m", "none", "--rate", "60000", "--duration", "1s",
        "-d", str(tmp_path / "x"),
    ])  # fmt: skip
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error) == 1 and "above what k6 can send here" in error[0], result.output
    assert "give rates of at most" in error[0]
    assert _k6_left() == []


def test_run_url_with_rates_writes_its_latencies(stalling: RunningServer, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "run", f"{stalling.url}/healthz", "--rate", "300,600", "--duration", "1s",
        "--cpus", "1", "-d", str(tmp_path), "-n", "open",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "open.latency.json").read_text())
    assert (data["schema"], data["version"]) == ("mwbench.latency", 1)
    assert [r["rate"] for r in data["rates"]] == [300, 600]
    # k6 keeping a 1 s schedule is up to the VM (a rate it missed is run again, up to three
    # times); what run must do is send the load, and keep its figures or say why they are not
    # the server's. Six runs all late would be a stalled machine, not a test of run.
    assert any(rate["status"] == "ok" for rate in data["rates"]), data["rates"]
    for rate in data["rates"]:
        if rate["status"] == "ok":
            assert rate["requests"] > 250 and 0 < rate["p50"] <= rate["p99"], rate
            # the server's latency: a stall of 20 ms every 100 requests is 6-12% of them here,
            # so p99 is in a stall (from below: a slow VM only adds)
            assert rate["p99"] > STALL_S * 1000 / 2, rate
        else:
            assert rate["status"] == "behind" and rate["reason"] and rate["requests"] > 0, rate
            assert "not sustained" in result.output
    # k6's own summary of the run at 600 req/s is the one run's figures were read from
    kept = json.loads((tmp_path / "open_600rps.k6.json").read_text())["metrics"]
    at_600 = data["rates"][1]
    assert at_600["requests"] == kept["http_reqs"]["values"]["count"]
    if at_600["status"] == "ok":
        assert at_600["p99"] == pytest.approx(kept["intended"]["values"]["p(99)"], rel=1e-9)


def test_the_generator_floor_retries_a_missed_schedule_and_refuses_a_rate_it_keeps_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # run_k6 replaced by one that misses its schedule a chosen number of times, then keeps it
    # (no k6 runs, no server starts): one stall of the VM is not a rate k6 cannot send.
    from harness.errors import UsageError
    from harness.experiments.compare import round as rounds
    from harness.experiments.compare.plan import CompareRequest, plan_compare
    from harness.load import k6

    misses: list[int] = []

    def flaky(url: str, *, rate: float, duration: float, **kw: object) -> RateResult:
        if rate == rounds.LIMIT_PROBE[0]:
            return RateResult(rate=rate, duration_s=duration, achieved=5_000.0)
        if len(misses) < budget:
            misses.append(1)
            late = "k6 started 1% of its requests 6.0 ms late or more"
            return RateResult(rate, duration, achieved=rate, p99=9.0, status="behind", reason=late)
        return RateResult(rate, duration, achieved=rate, p99=0.5)

    monkeypatch.setattr(rounds, "run_k6", flaky)
    monkeypatch.setattr(k6, "run_k6", flaky)
    asked = CompareRequest(
        targets=["starlette"],
        sets=[()],
        measures=("latency",),
        out_dir=tmp_path,
        load=LoadSettings(rates=(1000.0,), duration=1.0),
    )
    plan = plan_compare(asked)
    budget = k6.TRIES - 1
    floor = rounds.generator_floor(plan, echo=lambda _: None)
    assert floor["limit"] == 5_000.0 and [f["p99"] for f in floor["rates"]] == [0.5]
    assert len(misses) == k6.TRIES - 1

    misses.clear()
    budget = k6.TRIES
    with pytest.raises(UsageError, match=r"6\.0 ms late or more; give rates of at most 3,000"):
        rounds.generator_floor(plan, echo=lambda _: None)
    assert len(misses) == k6.TRIES


def test_a_run_behind_with_every_vu_free_is_run_again_and_one_that_dropped_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.load import k6

    late = RateResult(1000, 1.0, achieved=1000.0, late_p99=7.0, status="behind", reason="late")
    dropped = RateResult(1000, 1.0, achieved=800.0, dropped=200, status="behind", reason="drop")
    kept = RateResult(1000, 1.0, achieved=1000.0, p99=0.5)
    asked: list[dict[str, object]] = []

    def kept_of(runs: list[RateResult]) -> RateResult:
        given = iter(runs)
        asked.clear()

        def fake(url: str, **kw: object) -> RateResult:
            asked.append(kw)
            return next(given)

        monkeypatch.setattr(k6, "run_k6", fake)
        return k6.run_k6_kept("http://127.0.0.1:9/", rate=1000, duration=1.0)

    assert kept_of([late, kept]) is kept and len(asked) == 2
    assert kept_of([late] * 5) is late and len(asked) == k6.TRIES
    assert kept_of([dropped, kept]) is dropped and len(asked) == 1  # the server's answer
    assert kept_of([kept, late]) is kept and len(asked) == 1
    assert asked == [{"rate": 1000, "duration": 1.0}]


def test_k6_is_asked_whole_requests_a_second(tmp_path: Path) -> None:
    # k6 exits 104 (invalid configuration) with no summary on 812.375 req/s: refused up front,
    # in words, before k6 starts.
    from harness.errors import UsageError

    with pytest.raises(UsageError, match=r"k6 sends whole requests a second, not 812\.375"):
        run_k6("http://127.0.0.1:9/healthz", rate=812.375, duration=1.0, k6=str(tmp_path / "no"))


def test_run_in_the_open_model_refuses_what_it_would_ignore_or_could_not_send(
    tmp_path: Path,
) -> None:
    url = "http://127.0.0.1:9/healthz"  # nothing is sent: each is refused first
    (tmp_path / "file").write_text("")
    for args, said, code in (
        (["--rate", "100", "-c", "8"], "--connections is wrk's (the closed model)", 2),
        (["--rate", "100", "--warmup", "1s"], "--warmup is wrk's", 2),
        (["--rate", "100", "-d", str(tmp_path / "file" / "sub")], "cannot write to output", 1),
        (["--rate", "1e9"], "beyond what k6 sends from one machine", 2),
    ):
        result = CliRunner().invoke(main, ["run", url, *args])
        assert result.exit_code == code, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith("Error: ") and said in line, line
    assert _k6_left() == []


def test_allow_remote_says_what_the_open_model_will_send() -> None:
    from harness.cli.run import open_announcement

    fixed = LoadSettings(rates=(500.0, 1000.0), duration=5.0)
    assert open_announcement("198.18.0.2", fixed, None) == (
        "sending open-model load to 198.18.0.2 (k6, 5s a rate): 500, 1,000 req/s"
    )
    shares = LoadSettings(rate_shares=(0.5,), duration=5.0)
    said = open_announcement("198.18.0.2", shares, parse_slo("p99<50ms"))
    assert "a closed-model peak sweep (wrk, 64 connections, 3s), 50% of its peak," in said
    assert said.endswith("a capacity search within p99<50ms (at most 7 rates)")


def test_one_rate_draws_each_set_s_percentiles_along_the_axis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starlette, raw = get_target("starlette"), get_target("raw-asgi")
    entries = link(
        [
            Entry(Contender(starlette, (), "set"), "none", []),
            Entry(Contender(raw, (), "baseline"), "raw-asgi:none", []),
        ]
    )
    measures = [f"latency:{p}@500" for p in PERCENTILES]
    for k, name in enumerate(measures):  # the baseline k ms at the k-th percentile, none 1 more
        set_overheads(entries, {"none": [1.0, 1.0]}, measure=name)
        for entry in entries:
            for one in entry.rounds:
                one.values[name] -= BASE - k
    floor = {"rate": 500.0, "p50": 0.5, "p90": 0.6, "p99": 0.7, "p999": 0.8, "max": 0.9}
    settings = CompareSettings(rates=[500.0], generator={"rates": [floor]})
    report = report_of(entries, measures=tuple(measures), settings=settings)
    drawn: list[Any] = []
    real_save = harness.render.charts.save_line_chart

    def keep(fig: Any, ax: Any, path: Path, *, title: str, note: str) -> Path | None:
        lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
        drawn.append((title, [t.get_text() for t in ax.get_xticklabels()], lines))
        return real_save(fig, ax, path, title=title, note=note)

    monkeypatch.setattr(harness.render.charts, "save_line_chart", keep)
    assert hockey_chart(report, tmp_path / "latency.png") == tmp_path / "latency.png"
    ((title, ticks, lines),) = drawn
    assert title == "Latency at 500 req/s: starlette" and ticks == list(PERCENTILES)
    assert lines["raw-asgi:none"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert lines["none"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert lines["k6 → ceiling (the floor)"] == [0.5, 0.6, 0.7, 0.8, 0.9]
    height, width, _ = matplotlib.image.imread(tmp_path / "latency.png").shape
    assert width > 400 and height > 200
