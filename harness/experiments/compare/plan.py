"""compare's first step: everything checked and resolved before a single server starts.

A plan is the contenders (every target with every set, and the raw baselines, on every server of
the axis), the server each one runs on, how they are served and loaded, the measures, and the
rounds' rules (repeat, precision, gate). A bad setting is a UsageError here, naming the keyword;
nothing has run yet.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.experiments.compare.contenders import Contender, Entry, contenders, link, shard_of
from harness.experiments.compare.environments import check_pythons
from harness.experiments.compare.gate import Gate
from harness.experiments.compare.result import CompareSettings
from harness.experiments.compare.rounds import Precision
from harness.experiments.sweep.plan import check_levels, check_out_dir
from harness.load.settings import LoadSettings
from harness.load.wrk import resolve_wrk
from harness.machine.cpus import CpuPlan
from harness.measures.measure import Measure
from harness.measures.registry import DEFAULT_MEASURES, resolve_measures
from harness.measures.slo import Slo
from harness.serving.pythons import Python, PythonInfo, find_python
from harness.serving.servers import ServerConfig, check_config, passed_lengths
from harness.serving.settings import DEFAULT_SERVE, ServeSettings, as_server
from harness.serving.variants import Variant
from targets.server_table import Server, ServerChoiceError
from targets.table import Target

DEFAULT_OUT_DIR = Path("_output/compare")
COMPARE_LOAD = LoadSettings()  # one level of 64 connections, 3 s after a 1 s warm-up
# What compare times a WSGI target on when neither a worker class nor a server is chosen:
# gthread, which keeps connections alive. On the sync worker every request is also a TCP
# connection, and Flask's 95% interval per minute of measurement is 4 to 6 times wider (bench
# part f, docs/middleware.md): a middleware's cost then hides in the connection's.
COMPARE_WSGI_WORKER = "gthread"
# The latency measure's rate when none is given: half the slowest set's closed-model peak, where
# a server has headroom and a middleware's scheduling cost, not the queue, shows in its p99.
DEFAULT_RATE_SHARES = (0.5,)


@dataclass(frozen=True, eq=False)
class ComparePlan:
    contenders: tuple[Contender, ...]
    serving: dict[Contender, Server]  # the server each contender runs on, resolved
    serve: ServeSettings
    load: LoadSettings
    measures: tuple[Measure, ...]  # the headline first
    out_dir: Path
    repeat: int = 1
    servers: tuple[Server, ...] = ()  # the server axis, resolved; (): each target's own
    precision: Precision | None = None
    gate: Gate | None = None
    ceiling: bool = True
    ceiling_qps: float | None = None
    tune: bool = True
    slo: Slo | None = None  # find each set's capacity within it (open model)
    pythons: tuple[PythonInfo, ...] = ()  # the environment axis; (): the harness's own Python
    variants: tuple[Variant, ...] = ()  # the variant axis; (): the environment as it is
    # With a shard (index, count): the contenders of the whole compare, which its labels and
    # its order are of; this plan measures its share of them (contenders.shard).
    shard: tuple[int, int] | None = None
    whole: tuple[Contender, ...] = ()
    jobs: int = 1  # contenders measured at once in a round (side-by-side measures only)

    @property
    def headline(self) -> Measure:
        return self.measures[0]

    @property
    def has_app(self) -> bool:
        return any(c.target.is_user_app for c in self.contenders)

    def worker_class_for(self, contender: Contender) -> str | None:
        # A worker class is gunicorn's, for WSGI; beside an ASGI or aiohttp target it is not theirs.
        if contender.target.interface != "wsgi":
            return None
        if self.serve.worker_class is None and contender.server is None:
            return COMPARE_WSGI_WORKER
        return self.serve.worker_class

    def serve_for(self, contender: Contender, log_output: str | None = None) -> ServeSettings:
        """How `contender` is served: on its server of the axis, with its worker class, logging
        to `log_output` unless the settings chose a sink, as its measures need it run."""
        serve = self.serve.replace(
            python=self.python_path(contender),
            server=self.serving.get(contender),
            worker_class=self.worker_class_for(contender),
            log_output=self.serve.log_output or log_output,
            env=(*self.serve.env, *self.variant_env(contender)),
        )
        for measure in self.measures:
            serve = measure.prepare(serve, self.out_dir)
        return serve

    def python_path(self, contender: Contender) -> str | None:
        """The interpreter `contender` runs in: its environment's, else the settings' own."""
        for info in self.pythons:
            if info.python.name == contender.python:
                return info.python.path
        return self.serve.python

    def variant_env(self, contender: Contender) -> tuple[tuple[str, str], ...]:
        """The variables `contender`'s variant sets; () outside a variant."""
        return self.variant_by_name(contender.variant).env if contender.variant else ()

    def variant_by_name(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def load_for(self, contender: Contender) -> LoadSettings:
        """The load a round of `contender` sends, as its measures need it. The targets here all
        answer the same routes; a user's app answers its own, and the raw baseline beside it is
        timed on its GET /healthz."""
        load = self.round_load
        if self.has_app and not contender.target.is_user_app:
            load = load.replace(request=None)
        return load

    @property
    def round_load(self) -> LoadSettings:
        """The load a round sends, as the measures need it (their levels, a fixed count)."""
        load = self.load
        for measure in self.measures:
            load = measure.prepare_load(load)
        return load

    @property
    def reads_speed(self) -> bool:
        """A measure times the server: then the load generator's ceiling matters."""
        return any(m.timed for m in self.measures)

    def entries(self) -> list[Entry]:
        return link([Entry(c, self.label(c), [], self.serving[c].name) for c in self.contenders])

    def shard_dict(self) -> dict[str, Any] | None:
        """Which share of the whole compare this is, and the whole's order, for the merge."""
        if self.shard is None:
            return None
        index, count = self.shard
        return {"index": index, "count": count, "order": [self.label(c) for c in self.whole]}

    def label(self, contender: Contender) -> str:
        """`contender`'s label, as the whole compare names it (a shard's are the same)."""
        everyone = self.whole or self.contenders
        multi_target = len({c.target.name for c in everyone if c.role == "set"}) > 1
        multi_server, multi_python = len(self.servers) > 1, len(self.pythons) > 1
        return contender.label(multi_target, multi_server, multi_python, len(self.variants) > 1)

    def settings(self) -> CompareSettings:
        """What the report records of how it was measured."""
        serve, load = self.serve, self.round_load
        first = self.serve_for(self.contenders[0])  # as its measures run it
        wsgi = [s.worker_class for c, s in self.serving.items() if c.target.interface == "wsgi"]
        return CompareSettings(
            measures=[m.name for m in self.measures],
            levels=list(load.levels),
            duration_s=load.duration_s,  # what wrk really ran: it takes whole seconds
            warmup_s=load.warmup_s,
            timeout_s=load.timeout,
            repeat=self.repeat,
            jobs=self.jobs,
            workers=serve.workers,
            # The WSGI worker really used (compare's default is gthread), for whoever reads it.
            worker_class=serve.worker_class or next(iter(wsgi), None),
            threads=serve.threads,
            servers=[server.name for server in self.servers] or None,
            pythons=[info.to_dict() for info in self.pythons] or None,
            variants=[variant.to_dict() for variant in self.variants] or None,
            shard=self.shard_dict(),
            pinning=CpuPlan(serve.cpus, load.cpus).describe(),
            server_cpus=list(serve.cpus) if serve.cpus else None,
            wrk_cpus=list(load.cpus) if load.cpus else None,
            request=load.asked.to_dict(),
            requests=load.requests,  # a fixed count per round, instead of a duration
            paced=load.paced,
            slo=self.slo.describe() if self.slo else None,
            log_output=serve.log_output or "file:DIR/logs/SET.log",
            # DIR for the output directory: two runs in two directories were wrapped alike
            wrapper=[arg.replace(str(self.out_dir), "DIR") for arg in first.wrapper] or None,
            passed_env=passed_lengths(first),
            apps={
                c.target.name: {"app": c.target.app, "framework": c.target.framework}
                for c in self.contenders
                if c.target.is_user_app
            },
        )


def _serving(chosen: list[Contender], probe: ComparePlan) -> dict[Contender, Server]:
    """Every contender's server, resolved, and its settings checked: one that cannot serve its
    target (or disagrees with the worker class) is a UsageError here."""
    axis = {server.name: server for server in probe.servers}
    found = {}
    for contender in chosen:
        try:
            server = contender.target.server_for(
                axis.get(contender.server or ""), probe.worker_class_for(contender)
            )
        except ServerChoiceError as exc:
            raise UsageError(str(exc), param="servers") from None
        serve = probe.serve_for(contender).replace(server=server)
        check_config(ServerConfig(contender.target, contender.stack, serve))
        found[contender] = server
    return found


@dataclass(frozen=True, kw_only=True)
class CompareRequest:
    """What a compare is asked to measure, as given: built once (the CLI builds it from its
    options) and taken whole by plan_compare, which checks and resolves it. What each field
    means: harness.experiments.compare.run.compare."""

    targets: Sequence[str | Target]
    sets: Sequence[tuple[str, ...]]
    serve: ServeSettings = DEFAULT_SERVE
    load: LoadSettings = COMPARE_LOAD
    servers: Sequence[Server | str] = ()  # the server axis: servers, or their names
    baseline: bool = True
    repeat: int = 1
    measures: Sequence[str] = DEFAULT_MEASURES
    precision: Precision | None = None
    gate: Gate | None = None
    ceiling: bool = True
    ceiling_qps: float | None = None
    tune: bool = True
    out_dir: Path | str = DEFAULT_OUT_DIR
    slo: Slo | None = None
    pythons: Sequence[Python | PythonInfo | str] = ()
    variants: Sequence[Variant] = ()
    shard: tuple[int, int] | None = None
    jobs: int | None = None


def plan_compare(request: CompareRequest) -> ComparePlan:
    """Check and resolve `request`: UsageError, WrkError or OutputError before a single server
    starts."""
    if request.repeat < 1:
        raise UsageError("repeat must be at least 1", param="repeat")
    if not request.targets or not request.sets:
        raise UsageError("at least one target and one middleware set are needed")
    measures, load = _measures_and_load(request.measures, request.load, request.slo)
    precision, gate = _on_headline(request.precision, request.gate, measures, load)
    serve, out_dir = request.serve, Path(request.out_dir)
    # One server chosen in the settings is an axis of one: every contender on it.
    axis = _server_axis(request.servers or ([serve.server] if serve.server else []))
    environments = [_python(p) for p in request.pythons]
    if len({v.name for v in request.variants}) < len(request.variants):
        raise UsageError("two variants have one name: give each its own", param="variants")
    whole = contenders(
        request.targets,
        request.sets,
        request.baseline,
        [server.name for server in axis] or [None],
        [p.name for p in environments] or [None],
        [v.name for v in request.variants] or [None],
    )
    chosen = _shard(whole, *request.shard) if request.shard else whole
    check_levels(load.levels)
    check_out_dir(out_dir)
    resolve_wrk(load.wrk)
    plan = ComparePlan(
        contenders=tuple(chosen),
        serving={},
        serve=serve,
        load=load,
        measures=measures,
        out_dir=out_dir,
        repeat=request.repeat,
        servers=axis,
        precision=precision,
        gate=gate,
        ceiling=request.ceiling,
        ceiling_qps=request.ceiling_qps,
        tune=request.tune,
        slo=request.slo,
        variants=tuple(request.variants),
        shard=request.shard,
        whole=tuple(whole) if request.shard else (),
        jobs=_jobs(request.jobs, measures),
    )
    serving = _serving(chosen, plan)
    # Environments already checked (a plan's own, for a quick compare beside it) are not again.
    known = tuple(p for p in request.pythons if isinstance(p, PythonInfo))
    if len(known) < len(request.pythons):
        known = check_pythons(environments, serving)
    return dataclasses.replace(plan, serving=serving, pythons=known)


def _server_axis(given: Sequence[Server | str]) -> tuple[Server, ...]:
    """The servers of the axis, each once, in order: given resolved (the CLI's --server), or by
    name (the API), resolved here."""
    return tuple(dict.fromkeys(as_server(s, param="servers") for s in given))


def _python(given: Python | PythonInfo | str) -> Python:
    if isinstance(given, PythonInfo):
        return given.python
    return given if isinstance(given, Python) else find_python(given)


def _on_headline(
    precision: Precision | None, gate: Gate | None, measures: Sequence[Measure], load: LoadSettings
) -> tuple[Precision | None, Gate | None]:
    """The precision target and the gate, on the headline's first figure (memory's retained
    bytes; latency's p99, once its rates are resolved: compare.run) where they name the
    headline measure; a gate on a figure this compare does not measure is a UsageError."""
    headline = (measures[0].figures(load) or (measures[0].name,))[0]
    if precision is not None:
        precision = dataclasses.replace(precision, measure=headline)
    if gate is None:
        return precision, None
    if gate.measure == measures[0].name:
        gate = dataclasses.replace(gate, measure=headline)
    if gate.measure not in {name for m in measures for name in (m.name, *m.figures(load))}:
        raise UsageError(
            f"the gate is on {gate.measure}, which this compare does not measure: "
            "add it to the measures",
            param="measures",
        )
    return precision, gate


def _shard(chosen: list[Contender], index: int, count: int) -> list[Contender]:
    sets = sum(1 for c in chosen if c.role == "set")
    if not 1 <= index <= count:
        raise UsageError(f"shard {index}/{count}: K must be from 1 to {count}", param="shard")
    if count > sets:
        raise UsageError(
            f"{count} shards for {sets} set(s): at most {sets}, one set a shard", param="shard"
        )
    return shard_of(chosen, index, count)


def _measures_and_load(
    measures: Sequence[str], load: LoadSettings, slo: Slo | None
) -> tuple[tuple[Measure, ...], LoadSettings]:
    """The measures, checked on this machine and against each other, and the load they send
    (the open model's default rate where latency is measured without one)."""
    chosen = resolve_measures(measures)
    for measure in chosen:
        measure.check()
    procedures = {m.procedure for m in chosen}
    if len(procedures) > 1:
        raise UsageError(
            "these measures need different runs: "
            + ", ".join(f"{m.name} ({m.procedure})" for m in chosen)
            + "; measure them in two compares",
            param="measures",
        )
    if slo is not None and "k6" not in procedures:
        raise UsageError("an SLO is met at an arrival rate: measure latency", param="measures")
    if (load.rates or load.rate_shares) and "k6" not in procedures:
        raise UsageError(
            "an arrival rate is the open model's load: measure latency", param="measures"
        )
    if "k6" in procedures and not (load.rates or load.rate_shares):
        load = load.replace(rate_shares=DEFAULT_RATE_SHARES)
    if any(not 0 < r < math.inf for r in (*load.rates, *load.rate_shares)):
        raise UsageError("a rate must be a finite number more than 0", param="rates")
    return tuple(chosen), load


def _jobs(jobs: int | None, measures: Sequence[Measure]) -> int:
    """How many contenders a round measures at once: as asked, or as many as there are cores
    where every measure counts rather than times (one at a time otherwise)."""
    side_by_side = all(m.side_by_side for m in measures)
    if jobs is None:
        return (os.cpu_count() or 1) if side_by_side else 1
    if jobs < 1:
        raise UsageError("jobs must be at least 1", param="jobs")
    if jobs > 1 and not side_by_side:
        timed = ", ".join(m.name for m in measures if not m.side_by_side)
        raise UsageError(
            f"jobs above 1 runs servers side by side, and {timed} would read what each does to "
            "the other (their time, their caches): give 1, or measures that count "
            "(instructions)",
            param="jobs",
        )
    return jobs
