"""`harness run URL --rate ...`: the open model against any URL. k6 at each rate in turn after a
second of warm-up, and with an SLO the URL's capacity within it, searched for under its
closed-model peak (a short wrk sweep, which also makes rates given as shares absolute). A rate
at which k6 fell behind with every VU free is run again, up to three runs (`run_k6_kept`); a
capacity probe runs once.

The result is plain data: NAME.latency.json (`{"schema": "mwbench.latency", "version": 1}`)
holds every rate's figures, the peak, the capacity search and its probes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import RunError
from harness.experiments.compare.capacity import Capacity, search
from harness.load.files import versioned
from harness.load.k6 import TRIES, RateResult, run_k6, run_k6_at
from harness.load.settings import LoadSettings
from harness.measures.latency import WARMUP_S
from harness.measures.slo import Slo

SCHEMA, VERSION = "latency", 1
PEAK_LOAD = LoadSettings(levels=(64,), duration=2.0, warmup=1.0)  # the closed-model peak's sweep


@dataclass
class OpenRun:
    url: str
    name: str
    out_dir: Path
    duration_s: float
    rates: list[RateResult] = field(default_factory=list)
    probes: list[RateResult] = field(default_factory=list)  # the capacity search's
    closed_peak: float | None = None
    slo: str | None = None
    capacity: Capacity | None = None
    interrupted: bool = False
    wall_s: float = 0.0

    @property
    def json_path(self) -> Path:
        return self.out_dir / f"{self.name}.latency.json"

    def to_dict(self) -> dict[str, Any]:
        return versioned(
            SCHEMA,
            VERSION,
            {
                "url": self.url,
                "name": self.name,
                "duration_s": self.duration_s,
                "rates": [r.to_dict() for r in self.rates],
                "probes": [r.to_dict() for r in self.probes],
                "closed_peak": self.closed_peak,
                "slo": self.slo,
                "capacity": self.capacity.to_dict() if self.capacity else None,
                "interrupted": self.interrupted,
                "wall_s": round(self.wall_s, 3),
            },
        )


def closed_peak(url: str, load: LoadSettings, out_dir: Path, name: str) -> float:
    """The URL's closed-model peak QPS: a short wrk sweep."""
    from harness.experiments.sweep.run import sweep

    swept = sweep(
        url=url,
        name=f"{name}_peak",
        out_dir=out_dir,
        load=PEAK_LOAD.replace(cpus=load.cpus, wrk=load.wrk, request=load.request),
        progress=False,
        meta={"command": "run --rate", "for": "closed-model peak"},
    )
    if swept.peak is None:
        raise RunError(f"no closed-model peak: every wrk level against {url} failed")
    return swept.peak.qps


def open_run(
    *,
    url: str,
    load: LoadSettings,
    slo: Slo | None,
    out_dir: Path,
    name: str,
    echo: Callable[[str], None],
) -> OpenRun:
    """k6 against `url` at each of `load`'s rates (or shares of its peak), and its capacity
    within `slo`. Ctrl-C keeps the rates measured so far (`interrupted`)."""
    started = time.monotonic()
    run = OpenRun(url, name, out_dir, load.duration, slo=slo.describe() if slo else None)
    out_dir.mkdir(parents=True, exist_ok=True)

    def at(rate: float, tries: int = TRIES) -> RateResult:
        return run_k6_at(url, rate, load, kept_as=out_dir / name, tries=tries)

    try:
        if load.rate_shares or slo is not None:
            run.closed_peak = closed_peak(url, load, out_dir, name)
            echo(f"closed-model peak: {run.closed_peak:,.0f} req/s (wrk, 64 connections)")
        rates = list(load.rates) or sorted(
            {round(s * (run.closed_peak or 0)) for s in load.rate_shares}
        )
        if rates:
            run_k6(url, rate=min(rates), duration=WARMUP_S, request=load.request, cpus=load.cpus)
        for rate in rates:
            run.rates.append(at(rate))
            echo(rate_outcome_line(run.rates[-1]))
        if slo is not None and run.closed_peak:

            def probe(rate: float) -> RateResult:
                run.probes.append(at(rate, tries=1))  # once, as compare's (capacity.py)
                echo(f"capacity probe: {rate_outcome_line(run.probes[-1])}")
                return run.probes[-1]

            run.capacity = search(probe, slo, peak=run.closed_peak)
    except KeyboardInterrupt:
        run.interrupted = True
    run.wall_s = time.monotonic() - started
    return run


def rate_outcome_line(result: RateResult) -> str:
    head = f"{result.rate:,.0f} req/s: "
    if result.status != "ok":
        return head + f"not sustained ({result.reason})"
    return head + ", ".join(
        f"{p} {v:.2f} ms" for p in ("p50", "p90", "p99") if (v := result.percentile(p)) is not None
    )
