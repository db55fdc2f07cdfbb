"""One round of one contender: a fresh server as the plan serves it, its answer checked, loaded
as its measures say (the wrk sweep read at its saturating level, or a measure's own procedure),
stopped; and the servers a compare measures besides its contenders (the ceiling, the open-model
generator's floor).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.experiments.compare.contenders import Contender, Round
from harness.experiments.compare.plan import ComparePlan
from harness.experiments.sweep.run import sweep
from harness.load.k6 import run_k6, run_k6_kept
from harness.load.results import SweepResult
from harness.load.settings import LoadSettings
from harness.load.validate import validate
from harness.measures.measure import Measure, WireRound, combined
from harness.serving.log_links import log_link
from harness.serving.servers import RunningServer, ServerError, start_server
from harness.serving.settings import ServeSettings


def read_round(
    repeat: int, swept: SweepResult, serve: ServeSettings, measures: Sequence[Measure]
) -> Round:
    """What one round measured, at its saturating level: each measure's value per request."""
    peak = swept.peak
    if peak is None:
        reasons = sorted({lv.reason for lv in swept.levels if lv.reason})
        return Round(repeat, "failed", "no level measured: " + "; ".join(reasons), sweep=swept)
    wire = WireRound(swept, peak, serve)
    values = {name: v for m in measures for name, v in m.read_figures(wire).items()}
    return Round(
        repeat,
        "ok",
        values=values,
        peak_level=peak.concurrency,
        peak_qps=peak.qps,
        p99_ms=peak.p99_ms,
        latency_avg_ms=peak.latency_avg_ms,
        connections=peak.connections,
        files=str(swept.json_path),
        sweep=swept,
    )


def _round_log(out_dir: Path, contender: Contender) -> str:
    # The default sink: a real file, as in production; each round's log stands alone. The
    # server is given a link to it, whose path is as long whatever the run's directory.
    path = out_dir / "logs" / f"{contender.file_stem}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return f"file:{log_link(path)}"


def _swept(
    server: RunningServer, contender: Contender, repeat: int, plan: ComparePlan, name: str
) -> Round:
    """The wrk procedure: a sweep with each measure's probe around the measured level, read at
    its saturating level."""
    serve, load = server.config.settings, plan.load_for(contender)
    probes = [probe for m in plan.measures if (probe := m.probe(server)) is not None]
    swept = sweep(
        url=f"{server.url}{load.asked.path}",
        name=name,
        out_dir=plan.out_dir,
        load=load,
        progress=False,
        probe=combined(probes),
        serving=tuple(server.worker_pids()),
        meta={
            "target": contender.target.name,
            "middlewares": list(contender.stack),
            "server": server.config.serving.name,
            "workers": serve.workers,
            "worker_class": server.config.effective_worker_class,
            "server_cpus": list(serve.cpus) if serve.cpus else None,
            "repeat": repeat,
        },
    )
    return read_round(repeat, swept, serve, plan.measures)


@contextlib.contextmanager
def served(contender: Contender, plan: ComparePlan) -> Iterator[RunningServer]:
    """`contender` on a fresh server, as the plan serves it, its answer checked; stopped (and
    the measures' leftovers cleaned up) when done."""
    serve = plan.serve_for(contender, _round_log(plan.out_dir, contender))
    load = plan.load_for(contender)
    server = start_server(
        contender.target, serve, stack=contender.stack, ready_path=load.asked.path
    )
    watching = [stop for m in plan.measures if (stop := m.watch(server)) is not None]
    try:
        validate(server.url, contender.stack, load.request, marks=not contender.target.is_user_app)
        try:
            yield server
        except Exception:
            # A server a watch stopped (at its memory ceiling) fails however the load took it.
            said = _stop_watching(watching)
            if said:
                raise ServerError(said) from None
            raise
        said = _stop_watching(watching)
        if said:
            raise ServerError(said)
        if not server.alive():
            tail = server.stderr_tail(5).replace("\n", " | ")
            raise ServerError(
                f"server exited with code {server.process.returncode} mid-sweep: {tail}"
            )
    finally:
        _stop_watching(watching)
        server.stop(graceful=False)  # measured: nothing to wait for
        for measure in plan.measures:
            measure.after_stop(server)


def _stop_watching(watching: list[Callable[[], str | None]]) -> str | None:
    """Stop every watch (each stops once); the first reason given for stopping the server."""
    said = [reason for stop in watching if (reason := stop())]
    watching.clear()
    return said[0] if said else None


def measure_round(contender: Contender, repeat: int, plan: ComparePlan, *, name: str) -> Round:
    """`contender` on a fresh server, loaded as its measures say (the wrk sweep, or a measure's
    own procedure)."""
    with served(contender, plan) as server:
        own = plan.headline if plan.headline.procedure != "wrk" else None
        if own is not None:
            load = plan.load_for(contender)
            reading = own.run_round(server, load, plan.out_dir, name)
            return Round(repeat, "ok", values=reading.values, samples=reading.samples)
        return _swept(server, contender, repeat, plan, name)


def measure_ceiling(*, serve: ServeSettings, load: LoadSettings, out_dir: Path) -> float | None:
    """The load generator's limit with these settings: the ceiling server's peak QPS."""
    server = start_server("ceiling", serve.replace(server=None, worker_class=None, wrapper=()))
    try:
        swept = sweep(
            url=f"{server.url}/healthz",
            name="ceiling",
            out_dir=out_dir,
            load=load.replace(request=None),
            progress=False,
            meta={"target": "ceiling"},
        )
    finally:
        server.stop(graceful=False)
    return swept.peak.qps if swept.peak else None


LIMIT_PROBE = (20_000.0, 2.0)  # req/s and seconds: more than k6 sends on a core here
# Of that most, what k6 sustains with its schedule kept: 4,000 of ~7,000 here, not 6,000.
SUSTAINED_SHARE = 0.6


def generator_floor(plan: ComparePlan, echo: Callable[[str], None]) -> dict[str, Any]:
    """k6 against the ceiling server: the most it sends here (`limit`, req/s, asked far more
    than it can), and at each rate its own latency (`rates`), to be shown beside the sets'. A
    rate it cannot sustain against a server that answers at once, in `run_k6_kept`'s tries,
    is above what it can send here: a UsageError, before any set is measured."""
    server = start_server("ceiling", plan.serve.replace(server=None, worker_class=None, wrapper=()))
    rates = []
    try:
        url = f"{server.url}/healthz"
        rate, seconds = LIMIT_PROBE
        limit = run_k6(url, rate=rate, duration=seconds, cpus=plan.load.cpus).achieved
        for rate in plan.round_load.rates:
            one = None
            if rate <= limit:
                one = run_k6_kept(url, rate=rate, duration=plan.load.duration, cpus=plan.load.cpus)
            if one is None or one.status != "ok":
                said = f"it {one.reason}" if one else f"it sent {limit:,.0f} req/s at most"
                raise UsageError(
                    f"{rate:,.0f} req/s is above what k6 can send here: against the ceiling "
                    f"server {said}; give rates of at most {SUSTAINED_SHARE * limit:,.0f}",
                    param="rates",
                )
            rates.append(one.to_dict())
    finally:
        server.stop(graceful=False)
    echo(
        f"the generator (k6 against the ceiling): at most {limit:,.0f} req/s; "
        + "; ".join(f"{f['rate']:,.0f} req/s p99 {f['p99']:.2f} ms" for f in rates)
    )
    return {"limit": limit, "rates": rates}
