"""Capacity within an SLO: the highest arrival rate a server sustains within it, found by a
bounded bisection under its closed-model peak.

The search probes the top first: the closed-model peak, or 70% of what k6 sends here if that is
less (a server within the SLO there needs no search). Then the SLO's least rate (`qps>=1000`,
else an eighth of the peak or half the top, the lower), then it halves the bracket between the
highest rate within and the lowest rate not, until the bracket is within 5% of the top or 7
probes were sent. Each probe is one k6 run at a constant rate (harness.load.k6); a rate not
sustained is outside every SLO (one run each: a stall of the machine can lower a capacity by a
step of the bisection).
What the search found is plain data: the capacity, the peak beside it, what bounded it (the
server, k6 itself, or the peak) and every probe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.load.k6 import RateResult
from harness.measures.slo import Slo

if TYPE_CHECKING:
    from harness.experiments.compare.contenders import Entry
    from harness.experiments.compare.plan import ComparePlan

MAX_PROBES = 7
RESOLUTION = 0.05  # of the peak: the bracket at which the search stops
GENERATOR_SHARE = 0.7  # of what k6 sends at most: what it sustains with its schedule kept
LOWEST_SHARE = 1 / 8  # of the peak: the first rate down, when the SLO names no least rate


@dataclass
class Capacity:
    capacity: float | None  # the highest rate probed within the SLO; None: none was
    closed_peak: float
    # What stopped it going higher: "server" (the probe above missed the SLO), "generator" (k6
    # itself was saturated at the probe above: a lower bound; with no capacity, k6 fell behind
    # at the lowest probe), "peak" (within the SLO at the closed-model peak: at least that), or
    # "none" (no rate probed was within it).
    bound: str
    at_capacity: str = ""  # the figures at the capacity, in words
    probes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def missed_at(self) -> float | None:
        return missed_at(self.to_dict())


def missed_at(found: dict[str, Any]) -> float | None:
    """The lowest rate probed above the capacity that missed the SLO: the capacity lies between
    the two (the search's resolution), from the stored probes."""
    capacity = found.get("capacity") or 0
    above = [
        p["rate"] for p in found.get("probes") or [] if not p["within"] and p["rate"] > capacity
    ]
    return min(above, default=None)


def figures(result: RateResult) -> str:
    parts = [
        f"{name} {value:.2f} ms"
        for name in ("avg", "p99")
        if (value := result.percentile(name)) is not None
    ]
    return ", ".join([*parts, f"success {result.success_pct:.2f}%"])


def search(
    probe: Callable[[float], RateResult],
    slo: Slo,
    *,
    peak: float,
    limit: float | None = None,
    max_probes: int = MAX_PROBES,
    resolution: float = RESOLUTION,
) -> Capacity:
    """The capacity within `slo` of whatever `probe(rate)` loads, at most `max_probes` runs,
    at most the closed-model `peak` and 70% of what the generator sends here (`limit`)."""
    probes: list[dict[str, Any]] = []

    def within(rate: float) -> tuple[bool, RateResult]:
        result = probe(rate)
        missed = slo.missed(result)
        probes.append(
            {
                "rate": rate,
                "within": not missed,
                "missed": missed,
                "figures": figures(result),
                "status": result.status,
            }
        )
        return not missed, result

    top = float(round(min(peak, GENERATOR_SHARE * limit) if limit else peak))
    ok, above = within(top)
    if ok:
        bound = "peak" if top == round(peak) else "generator"
        return Capacity(top, peak, bound, figures(above), probes)
    low = float(round(slo.least_rate or min(peak * LOWEST_SHARE, top / 2)))
    if low >= top:
        return Capacity(None, peak, "none", "", probes)
    ok, below = within(low)
    if not ok:  # k6 behind even there says nothing of the server
        return Capacity(None, peak, "generator" if below.generator_bound else "none", "", probes)
    high = top
    while len(probes) < max_probes and high - low > resolution * top:
        middle = float(round((low + high) / 2))
        ok, result = within(middle)
        if ok:
            low, below = middle, result
        else:
            high, above = middle, result
    bound = "generator" if above.generator_bound else "server"
    return Capacity(low, peak, bound, figures(below), probes)


def find_capacities(
    plan: ComparePlan,
    entries: list[Entry],
    peaks: dict[str, float],
    limit: float | None,
    slo: Slo,
    found: dict[str, dict[str, Any]],
    echo: Callable[[str], None],
) -> None:
    """Each entry's capacity within `slo`, into `found` by label as it is found (an interrupted
    search keeps the capacities already found): one search per set, on a fresh server."""
    from harness.load.validate import ValidationError
    from harness.serving.servers import ServerError

    for entry in entries:
        peak = peaks.get(entry.label)
        if not peak:
            found[entry.label] = {"capacity": None, "bound": "failed", "error": "no peak"}
            continue
        try:
            one = _capacity_of(entry, plan, peak, limit, slo)
        except (ServerError, ValidationError) as exc:
            found[entry.label] = {"capacity": None, "bound": "failed", "error": str(exc)}
            continue
        found[entry.label] = one.to_dict()
        echo(f"capacity of {entry.label} within {slo.describe()}: {describe_capacity(one)}")


def _capacity_of(
    entry: Entry, plan: ComparePlan, peak: float, limit: float | None, slo: Slo
) -> Capacity:
    from harness.experiments.compare.round import served
    from harness.load.k6 import run_k6, run_k6_at
    from harness.measures.latency import WARMUP_S

    out = plan.out_dir / "capacity"
    out.mkdir(parents=True, exist_ok=True)
    load, stem = plan.load_for(entry.contender), entry.contender.file_stem
    with served(entry.contender, plan) as server:
        url = f"{server.url}{load.asked.path}"
        warmup = float(round(min(peak * LOWEST_SHARE, 1000)))  # k6 takes whole req/s
        run_k6(url, rate=warmup, duration=WARMUP_S, request=load.request, cpus=load.cpus)

        def probe(rate: float) -> RateResult:
            # Once a rate: retried (run_k6_kept), probes near a server's peak were late with VUs
            # free often enough to make a search 1.5x as long, for a bracket as wide.
            return run_k6_at(url, rate, load, kept_as=out / stem, tries=1)

        return search(probe, slo, peak=peak, limit=limit)


def describe_capacity(one: Capacity) -> str:
    peak = f"closed-model peak {one.closed_peak:,.0f} req/s"
    if one.capacity is None:
        lowest = min((p["rate"] for p in one.probes), default=one.closed_peak)
        if one.bound == "generator":
            return f"not found: k6 fell behind at {lowest:,.0f} req/s already ({peak})"
        return f"none at {lowest:,.0f} req/s or more ({peak})"
    missed = one.missed_at
    bounded = {
        "peak": "at least: within the SLO at the peak",
        "generator": "k6-bound: at least",
        "server": "the server's" + (f", {missed:,.0f} missed" if missed else ""),
    }[one.bound]
    return f"{one.capacity:,.0f} req/s ({bounded}; {peak}; {one.at_capacity})"
