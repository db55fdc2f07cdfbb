"""The open model's arithmetic without k6 running: an SLO parsed or refused, a recorded k6
summary read, a run judged sustained or not, and the capacity search's bounds (synthetic probes
whose latency is known: the search finds what they were made to hide)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.experiments.compare.capacity import describe_capacity, search
from harness.experiments.compare.result import CompareSettings
from harness.load.k6 import RateResult, judge, parse_summary, vus_for
from harness.measures.slo import DEFAULT_SLO, parse_slo

SUMMARY = Path(__file__).parent / "fixtures" / "k6" / "summary_1000rps.json"


def test_the_default_slo_is_the_source_documents_reference_values() -> None:
    slo = parse_slo(DEFAULT_SLO)
    assert slo.describe() == "avg<500ms,success>=99.95%,qps>=1000"
    assert slo.least_rate == 1000


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("p99 < 0.05s", "p99<50ms"),
        ("p99.9<200us,success>99%", "p99.9<0.2ms,success>99%"),
        ("max<=1s", "max<=1000ms"),
    ],
)
def test_slo_rules_take_their_units(text: str, said: str) -> None:
    assert parse_slo(text).describe() == said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("p99<fast", "cannot read the SLO rule 'p99<fast'"),
        ("p98<5ms", "figures: avg, p50, p90, p99, p99.9, max, success, qps"),
        ("p99<50", "give p99 a time"),
        ("qps>=10ms", "qps takes no ms"),
        ("", "cannot read the SLO rule ''"),
    ],
)
def test_an_slo_that_does_not_parse_names_what_would(text: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_slo(text)
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_a_recorded_summary_is_read_from_the_intended_start() -> None:
    result = judge(parse_summary(json.loads(SUMMARY.read_text()), rate=1000, duration_s=2))
    assert result.requests == 2001 and result.dropped == 0 and result.failed == 0
    assert result.achieved == pytest.approx(1000, rel=0.01)
    # Each percentile is the script's `intended` trend (from the request's intended start), not
    # k6's http_req_duration (send to answer) beside it in the same summary: their values differ.
    metrics = json.loads(SUMMARY.read_text())["metrics"]
    intended, http = metrics["intended"]["values"], metrics["http_req_duration"]["values"]
    assert (result.p50, result.p90, result.p99, result.p999, result.max, result.avg) == (
        0.9318540000000439, 1.6019329999999172, 4.465836999999965, 5.565768000000053,
        5.667999000000009, 1.079812756621691,
    )  # fmt: skip
    assert [result.p50, result.p99] == [intended["med"], intended["p(99)"]]
    assert [result.p50, result.p99] != [http["med"], http["p(99)"]]
    assert (result.http_p50, result.http_p99) == (0.242119, 3.594582)
    assert result.late_p99 == 1.2556660000000193  # the `late` trend's p99: k6 on its schedule
    assert result.status == "ok" and result.success_pct == 100


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"achieved": 980.0}, "achieved 980 of 1,000 req/s"),
        ({"dropped": 3}, "3 iterations dropped"),
        ({"late_p99": 7.5}, "k6 started 1% of its requests 7.5 ms late"),
        ({"failed": 21}, "21 of 2,000 requests failed"),
    ],
)
def test_a_rate_not_sustained_is_judged_behind(changes: dict[str, float], reason: str) -> None:
    result = RateResult(rate=1000, duration_s=2, requests=2000, achieved=1000, p99=1.0)
    for key, value in changes.items():
        setattr(result, key, value)
    judged = judge(result)
    assert judged.status in ("behind", "failed") and reason in judged.reason
    assert parse_slo("p99<50ms").missed(judged) == [f"not sustained: {judged.reason}"]


def test_vus_are_allocated_for_a_stall_up_front() -> None:
    assert vus_for(100) == 32 and vus_for(4000) == 200


def _server(limit: float, calls: list[float]) -> Callable[[float], RateResult]:
    """A server within any SLO up to `limit` req/s and 200 ms late above it."""

    def probe(rate: float) -> RateResult:
        calls.append(rate)
        p99 = 2.0 if rate <= limit else 200.0
        return RateResult(rate=rate, duration_s=1, requests=int(rate), achieved=rate, p99=p99,
                          avg=p99 / 2)  # fmt: skip

    return probe


@pytest.mark.parametrize("limit", [1300.0, 4321.0, 7000.0])
def test_the_search_brackets_the_capacity_within_its_resolution(limit: float) -> None:
    calls: list[float] = []
    found = search(_server(limit, calls), parse_slo("p99<50ms"), peak=8000)
    assert found.capacity is not None and found.bound == "server"
    assert found.capacity <= limit  # never a rate that missed
    assert limit - found.capacity <= 0.05 * 8000 or len(calls) == 7
    assert len(calls) <= 7 and calls[:2] == [8000, 1000]
    assert [p["rate"] for p in found.probes] == calls
    # the bracket: the capacity and the lowest rate above it that missed, with the limit between
    missed = found.missed_at
    assert missed is not None and found.capacity <= limit < missed
    assert missed == min(r for r in calls if r > limit)
    assert f"the server's, {missed:,.0f} missed" in describe_capacity(found)


def test_the_search_ends_at_once_at_the_peak_or_below_the_least_rate() -> None:
    calls: list[float] = []
    at_peak = search(_server(1e9, calls), parse_slo("p99<50ms"), peak=5000)
    assert (at_peak.capacity, at_peak.bound, calls) == (5000, "peak", [5000])
    calls.clear()
    none = search(_server(500, calls), parse_slo("p99<50ms,qps>=1000"), peak=5000)
    assert (none.capacity, none.bound, calls) == (None, "none", [5000, 1000])


def test_the_search_stays_under_what_the_generator_sends() -> None:
    calls: list[float] = []
    found = search(_server(1e9, calls), parse_slo("p99<50ms"), peak=20000, limit=6000)
    assert calls == [4200] and (found.capacity, found.bound) == (4200, "generator")


def test_under_the_generator_the_first_rate_down_is_below_the_top() -> None:
    """A fast server's eighth of its peak can be above what k6 sends: the search comes down to
    half the top instead, and still finds the capacity."""
    calls: list[float] = []
    found = search(_server(3000, calls), parse_slo("p99<50ms"), peak=40000, limit=7000)
    assert calls[:2] == [4900, 2450] and found.capacity is not None
    assert 2450 <= found.capacity <= 3000 and found.bound == "server"


def test_the_capacity_table_gives_the_bracket_from_the_stored_probes() -> None:
    from types import SimpleNamespace

    from harness.experiments.compare.render_latency import capacity_table

    found = search(_server(4321.0, []), parse_slo("p99<50ms"), peak=8000)
    settings = CompareSettings(capacity={"none": found.to_dict()}, slo="p99<50ms")
    report = SimpleNamespace(settings=settings)
    table = capacity_table(report)  # type: ignore[arg-type]
    assert table is not None
    (row,) = table[2]
    assert row[1] == f"{found.capacity:,.0f}"
    assert row[4] == f"the server ({found.missed_at:,.0f} req/s missed)"
