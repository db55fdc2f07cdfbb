"""Latency percentiles from every request of all rounds, with a bootstrap interval: the histogram
that keeps k6's samples, the pooled estimates, their round trip through compare.json, and k6's
samples on a real server."""

from __future__ import annotations

import random
import statistics

import pytest

from harness.experiments.compare.contenders import Contender, Entry, Round
from harness.load.k6 import run_k6
from harness.serving.servers import running
from harness.serving.settings import ServeSettings
from harness.stats.histogram import Histogram
from harness.stats.intervals import estimate
from harness.stats.pooled import pooled_cost, pooled_difference, quantile_of
from targets.table import get_target

P99 = "latency:p99@1000"


def _latencies(seed: int, n: int = 4000, scale: float = 1.0) -> list[float]:
    """Latencies in ms with a long tail: a lognormal around 1 ms, times `scale`."""
    rng = random.Random(seed)
    return [scale * rng.lognormvariate(0.0, 0.6) for _ in range(n)]


def _round(repeat: int, samples: list[float]) -> Round:
    h = Histogram.of(samples)
    assert h is not None
    return Round(repeat, "ok", values={P99: h.quantile(0.99)}, samples={"latency@1000": h})


def test_the_histogram_keeps_a_percentile_to_half_a_percent() -> None:
    samples = _latencies(1)
    h = Histogram.of(samples)
    assert h is not None and h.n == len(samples)
    exact = sorted(samples)
    for q in (0.5, 0.9, 0.99, 0.999):
        wanted = exact[max(0, -(-int(q * 1e6) * len(exact) // 1_000_000) - 1)]
        assert h.quantile(q) == pytest.approx(wanted, rel=0.006)
    assert h.quantile(1.0) == max(samples)
    assert Histogram.from_dict(h.to_dict()) == h
    assert Histogram.of([]) is None and Histogram.of([float("nan")]) is None


def test_percentile_figures_are_named_for_their_samples() -> None:
    assert quantile_of("latency:p99.9@1000") == ("latency@1000", pytest.approx(0.999))
    assert quantile_of("latency:max@250") == ("latency@250", 1.0)
    assert quantile_of("latency:achieved@1000") is None and quantile_of("cpu") is None


def test_two_rounds_that_agree_do_not_give_an_interval_of_zero() -> None:
    """Student's t over two rounds' p99s: ± 0.00 when they happen to agree. Pooled, the interval
    is that of the requests under the percentile: not zero, and around the pooled p99."""
    rounds = [_round(1, _latencies(2)), _round(2, _latencies(3))]
    rounds[1].values[P99] = rounds[0].values[P99]  # two rounds' own p99s that agree exactly
    assert estimate([r.values[P99] for r in rounds]).half_width == 0.0  # what it used to say
    pooled = pooled_cost(rounds, P99)
    assert pooled is not None and pooled.low is not None and pooled.high is not None
    assert pooled.half_width is not None and pooled.half_width > 0.01 * pooled.median
    assert pooled.low < pooled.median < pooled.high


def test_the_interval_of_a_percentile_is_never_below_zero() -> None:
    """Two rounds far apart: the mean ± t of their p99s ran below zero; a resample of real
    latencies cannot."""
    rounds = [_round(1, _latencies(4, scale=0.2)), _round(2, _latencies(5, scale=8.0))]
    assert estimate([r.values[P99] for r in rounds]).low < 0  # type: ignore[operator]
    pooled = pooled_cost(rounds, P99)
    assert pooled is not None and pooled.low is not None and pooled.low > 0
    assert pooled_cost(rounds, P99) == pooled  # seeded: the same rounds, the same interval


def test_a_difference_is_significant_only_when_there_is_one() -> None:
    same = Entry(Contender(get_target("raw-asgi"), (), "set"), "a", [])
    other = Entry(Contender(get_target("raw-asgi"), (), "set"), "b", [], reference=same)
    same.rounds = [_round(i, _latencies(10 + i)) for i in (1, 2, 3)]
    other.rounds = [_round(i, _latencies(20 + i)) for i in (1, 2, 3)]
    alike = other.overhead(P99)
    assert alike is not None and alike.has_interval and not alike.significant
    other.rounds = [_round(i, _latencies(20 + i, scale=1.3)) for i in (1, 2, 3)]
    slower = other.overhead(P99)
    assert slower is not None and slower.significant and slower.median > 0
    pairs = list(zip(other.rounds, same.rounds, strict=True))
    assert pooled_difference(pairs, P99) == slower


def test_samples_go_through_compare_json_and_old_files_still_load() -> None:
    one = _round(1, _latencies(6))
    back = Round.from_dict(one.to_dict())
    assert back.samples == one.samples
    old = one.to_dict()
    del old["samples"]  # a compare.json written before samples were kept
    plain = Round.from_dict(old)
    entry = Entry(Contender(get_target("raw-asgi"), (), "set"), "a", [plain, plain])
    assert entry.cost(P99) == estimate([one.values[P99]] * 2)  # the rounds' own p99s, as before


def test_the_max_is_the_largest_latency_of_all_rounds_without_an_interval() -> None:
    rounds = [_round(1, _latencies(7)), _round(2, _latencies(8))]
    largest = pooled_cost(rounds, "latency:max@1000")
    assert largest is not None and not largest.has_interval
    assert largest.median == max(r.samples["latency@1000"].max_ms for r in rounds)


def test_one_round_gives_a_percentile_and_a_difference_without_an_interval() -> None:
    """One round's requests cannot say how far another round would fall (its stall, its VM's
    minute): no interval, and so no claim that two sets differ, however far apart."""
    first = Entry(Contender(get_target("raw-asgi"), (), "set"), "a", [])
    slower = Entry(Contender(get_target("raw-asgi"), (), "set"), "b", [], reference=first)
    first.rounds = [_round(1, _latencies(30))]
    slower.rounds = [_round(1, _latencies(31, scale=2.0))]
    cost, overhead = slower.cost(P99), slower.overhead(P99)
    assert cost is not None and not cost.has_interval and cost.n == 1
    assert overhead is not None and overhead.median > 0 and not overhead.significant
    assert overhead.median == pytest.approx(cost.median - first.rounds[0].values[P99], rel=0.01)


@pytest.mark.slow
def test_k6_keeps_every_requests_latency_on_a_real_server() -> None:
    serve = ServeSettings(cpus=(0,), log_output="null")
    with running(get_target("raw-asgi"), serve, stack=()) as server:
        result = run_k6(f"{server.url}/healthz", rate=400, duration=1, cpus=(1,), samples=True)
        plain = run_k6(f"{server.url}/healthz", rate=400, duration=1, cpus=(1,))
    h = result.histogram
    assert h is not None and h.n == result.requests  # one sample per request, none lost
    assert result.p50 is not None and result.max is not None
    assert h.quantile(0.5) == pytest.approx(result.p50, rel=0.02)  # what k6's summary says
    assert h.max_ms == pytest.approx(result.max, rel=1e-6)
    assert plain.histogram is None  # kept only when asked: the other runs write no CSV
    assert statistics.fmean([h.n, result.requests]) > 300
