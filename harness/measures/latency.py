"""`latency`: percentiles at a fixed arrival rate (the open model), from each request's intended
start (harness.load.k6), per set and rate.

A round of a contender sends each rate in turn for the load's duration, after a second of
warm-up at the lowest. It reads, per rate, the percentiles p50, p90, p99, p99.9 and the max of
the latency from each request's intended start, in ms, and what was sustained: the achieved
rate, the iterations dropped and the requests that failed. A rate that was not sustained
(achieved more than 1% short, iterations dropped, k6 saturated, over 1% failed) gives no
latency: that is not the server's latency at that rate, and the set is flagged instead.

Its figures are named `latency:p99@1000` (p99 at 1,000 req/s), each compared like a measure of
its own; the compare table shows the p99s, compare.json has them all.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from harness.errors import UsageError
from harness.load.k6 import RateResult, rate_label, resolve_k6, run_k6, run_k6_at
from harness.load.settings import LoadSettings
from harness.measures.measure import Figure, Measure, Reading
from harness.serving.servers import RunningServer
from harness.stats.histogram import Histogram

PERCENTILES = ("p50", "p90", "p99", "p99.9", "max")
# What a rate sustained: req/s, iterations k6 could not start, requests that failed, 0 or 1.
FACTS = ("achieved", "dropped", "errors", "behind")
WARMUP_S = 1.0
_FIGURE = re.compile(r"(p50|p90|p99|p99\.9|max|achieved|dropped|errors|behind)@(\d+(?:\.\d+)?)")
BLIND_TO = (
    "CPU cost (a server that answers in time at this rate may still burn its core), and "
    "latency added by a network between client and server (here: loopback)"
)


@functools.cache
def figure(what: str, rate: str) -> Figure:
    """One figure of the latency measure, a percentile (ms) or a fact at one rate, as a measure
    of its own: named, shown and compared like one."""
    value = float(rate)
    at = f"{value:,.0f} req/s"
    unit = {
        "achieved": "req/s",
        "dropped": "iterations",
        "errors": "requests",
        "behind": "rounds",
    }.get(what, "ms")
    title = (
        f"{what} latency at {at}, from each request's intended start"
        if what in PERCENTILES
        else {
            "achieved": f"rate achieved at {at}",
            "dropped": f"iterations dropped at {at}",
            "errors": f"requests failed at {at}",
            "behind": f"rounds not sustained at {at}",
        }[what]
    )
    return Figure(
        name=f"latency:{what}@{rate}",
        unit=unit,
        title=title,
        short=f"{what}@{value:,.0f}/s",
        blind_to=BLIND_TO,
        digits=2 if unit == "ms" else 0,
        in_table=what == "p99",
        procedure="k6",
    )


class OpenModelLatency(Measure):
    name: str = "latency"
    unit: str = "ms"
    title: str = "latency at a fixed arrival rate, from each request's intended start"
    short: str = "latency"
    blind_to: str = BLIND_TO
    digits: int = 2
    known_cost: str | None = None
    procedure: str = "k6"

    def check(self) -> None:
        resolve_k6()

    def figure(self, name: str) -> Measure:
        found = _FIGURE.fullmatch(name)
        if found is None:
            raise KeyError(name)
        return figure(found.group(1), found.group(2))

    def figures(self, load: LoadSettings) -> tuple[str, ...]:
        """p99 at each rate first (the headline: p99 at the first rate), then the rest."""
        rates = [rate_label(r) for r in load.rates]
        order = ("p99", *(p for p in PERCENTILES if p != "p99"), *FACTS)
        return tuple(f"latency:{what}@{rate}" for what in order for rate in rates)

    def run_round(
        self, server: RunningServer, load: LoadSettings, out_dir: Path, name: str
    ) -> Reading:
        if not load.rates:
            raise UsageError("no rate to send: give rates (e.g. 1000,2000 or 50%)", param="rates")
        url = f"{server.url}{load.asked.path}"
        run_k6(url, rate=min(load.rates), duration=WARMUP_S, request=load.request, cpus=load.cpus)
        values: dict[str, float] = {}
        samples: dict[str, Histogram] = {}
        for rate in load.rates:
            # A round's rate at which k6 itself fell behind is run again (run_k6_kept): the
            # round would otherwise have no latency there, for a stall of the machine.
            result = run_k6_at(url, rate, load, kept_as=out_dir / name, samples=True)
            values.update(rate_values(result))
            if result.status == "ok" and result.histogram is not None:
                samples[f"latency@{rate_label(rate)}"] = result.histogram
        return Reading(values, samples)

    def flags(self, values: list[dict[str, float]]) -> list[str]:
        behind = sorted(
            {k.split("@")[1] for one in values for k, v in one.items() if "behind@" in k and v}
        )
        return [f"not sustained at {rate} req/s in some rounds" for rate in behind]


def rate_values(result: RateResult) -> dict[str, float]:
    """A rate's figures, as a round stores them: no latency where the rate was not sustained."""
    rate = rate_label(result.rate)
    values = {
        f"latency:achieved@{rate}": result.achieved,
        f"latency:dropped@{rate}": float(result.dropped),
        f"latency:errors@{rate}": float(result.failed),
        f"latency:behind@{rate}": 0.0 if result.status == "ok" else 1.0,
    }
    if result.status == "ok":
        for what in PERCENTILES:
            value = result.percentile(what)
            if value is not None:
                values[f"latency:{what}@{rate}"] = value
    return values
