"""What compare measures: contenders, their rounds as measured, and the estimates read off them.

A round stores what it measured: one value per measure, per completed request, at its saturating
(peak QPS) level. Every estimate is computed from the stored rounds when it is asked for, never
written back: a set's cost is the median and 95% interval of its rounds, and its overhead is its
cost minus its reference's (the target's `none` set, or else the raw baseline), paired round by
round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.load.results import SweepResult
from harness.stats.histogram import Histogram
from harness.stats.intervals import Estimate, estimate, paired_differences
from harness.stats.pooled import pooled_cost, pooled_difference
from middleware.stack import stack_file_name, stack_name
from targets.table import Target, get_target

GENERATOR_BOUND = 0.8  # within 20% of the ceiling's QPS: the run measured wrk, not the target
LITTLE_TOLERANCE = 0.2  # concurrency vs QPS x mean latency

Role = Literal["set", "baseline"]  # a set is measured for itself; a baseline to subtract
RoundStatus = Literal["ok", "failed", "missing"]  # missing: never run (interrupted, stopped)


@dataclass(frozen=True)
class Contender:
    target: Target
    stack: tuple[str, ...]
    role: Role
    server: str | None = None  # a server of targets.server_table; None: the target's default
    python: str | None = None  # the environment's name (harness.serving.pythons); None: ours
    variant: str | None = None  # the variant's name (harness.serving.variants); None: none

    @property
    def set_name(self) -> str:
        return stack_name(self.stack, self.target.layers)

    def label(
        self,
        multi_target: bool,
        multi_server: bool = False,
        multi_python: bool = False,
        multi_variant: bool = False,
    ) -> str:
        name = self.set_name
        if self.role == "baseline" or multi_target:
            name = f"{self.target.name}:{name}"
        name = f"{self.server}:{name}" if multi_server and self.server else name
        name = f"{self.python}:{name}" if multi_python and self.python else name
        return f"{self.variant}:{name}" if multi_variant and self.variant else name

    @property
    def file_stem(self) -> str:
        # The label's file-safe spelling: `spin:20us` is `spin-20us` in file names.
        stem = f"{self.target.name}_{stack_file_name(self.stack, self.target.layers)}"
        stem = f"{self.server}_{stem}" if self.server else stem
        stem = f"{self.python}_{stem}" if self.python else stem
        return f"{self.variant}_{stem}" if self.variant else stem


@dataclass
class Round:
    """One contender measured once: a fresh server, validated, swept; `values` holds what each
    measure read off its saturating level, per completed request."""

    repeat: int
    status: RoundStatus = "missing"
    reason: str = ""
    values: dict[str, float] = field(default_factory=dict)
    peak_level: int | None = None
    peak_qps: float = math.nan
    p99_ms: float | None = None
    latency_avg_ms: float | None = None
    connections: int | None = None
    files: str | None = None  # the round's sweep, NAME.json
    # every request's figure where a measure keeps them (latency@1000: each latency at that rate)
    samples: dict[str, Histogram] = field(default_factory=dict)
    sweep: SweepResult | None = field(default=None, repr=False, compare=False)  # not stored

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def value(self, measure: str) -> float:
        """This round's value of `measure`, NaN when it has none."""
        return self.values.get(measure, math.nan)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repeat": self.repeat,
            "status": self.status,
            "reason": self.reason,
            "values": {k: _finite_or_none(v) for k, v in self.values.items()},
            "files": self.files,
            "peak_level": self.peak_level,
            "peak_qps": _finite_or_none(self.peak_qps),
            "p99_ms": self.p99_ms,
            "latency_avg_ms": self.latency_avg_ms,
            "connections": self.connections,
            **self._samples_dict(),
        }

    def _samples_dict(self) -> dict[str, Any]:
        """Only where a measure kept them: a compare.json of wrk rounds stays as it was."""
        if not self.samples:
            return {}
        return {"samples": {k: h.to_dict() for k, h in self.samples.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Round:
        values = {k: float(v) for k, v in (data.get("values") or {}).items() if v is not None}
        peak = data.get("peak_qps")
        return cls(
            repeat=int(data["repeat"]),
            status=data["status"],
            reason=data.get("reason", ""),
            values=values,
            peak_level=data.get("peak_level"),
            peak_qps=math.nan if peak is None else float(peak),
            p99_ms=data.get("p99_ms"),
            latency_avg_ms=data.get("latency_avg_ms"),
            connections=data.get("connections"),
            files=data.get("files"),
            samples={k: Histogram.from_dict(h) for k, h in (data.get("samples") or {}).items()},
        )


@dataclass(eq=False)
class Entry:
    """A contender, its rounds, and what it is measured against: its estimates are computed from
    the rounds on every call."""

    contender: Contender
    label: str
    rounds: list[Round]
    server: str = ""  # the server it ran on, resolved (the target's default when not chosen)
    reference: Entry | None = None  # what its overhead is measured against
    baseline: Entry | None = None  # the raw baseline on its server, for its share of the QPS
    invalid: bool = False  # it answered wrongly: never timed again

    @property
    def ok_rounds(self) -> list[Round]:
        return [r for r in self.rounds if r.ok]

    @property
    def missing(self) -> list[str]:
        return [
            f"{self.label} round {r.repeat}: {r.status}" + (f" ({r.reason})" if r.reason else "")
            for r in self.rounds
            if not r.ok
        ]

    def values(self, measure: str) -> list[float]:
        """The finite values of `measure` in the rounds that measured."""
        return [v for r in self.ok_rounds if math.isfinite(v := r.value(measure))]

    def cost(self, measure: str) -> Estimate | None:
        """Per request, in `measure`: median and 95% interval over the rounds; a percentile of
        samples the rounds kept, from all of them pooled (harness.stats.pooled)."""
        pooled = pooled_cost(self.ok_rounds, measure)
        if pooled is not None:
            return pooled
        found = self.values(measure)
        return estimate(found) if found else None

    def difference(self, other: Entry, measure: str) -> Estimate | None:
        """This entry's cost minus `other`'s, paired round by round (a round missing on either
        side is left out)."""
        pooled = pooled_difference(paired(self.rounds, other.rounds), measure)
        if pooled is not None:
            return pooled
        diffs = self.differences(other, measure)
        return estimate(diffs) if diffs else None

    def differences(self, other: Entry, measure: str) -> list[float]:
        """This entry's value minus `other`'s in each round both measured."""
        pairs = paired(self.rounds, other.rounds)
        return paired_differences(
            [a.value(measure) for a, _ in pairs], [b.value(measure) for _, b in pairs]
        )

    def overhead(self, measure: str) -> Estimate | None:
        """The cost over the reference's, paired round by round; None without a reference."""
        return None if self.reference is None else self.difference(self.reference, measure)

    @property
    def peak_qps(self) -> Estimate | None:
        found = [r.peak_qps for r in self.ok_rounds if math.isfinite(r.peak_qps)]
        return estimate(found) if found else None

    @property
    def pct_of_baseline(self) -> float | None:
        """Its peak QPS as a share of the raw baseline's on the same server (medians)."""
        base = self.baseline
        if base is None or base is self or self.peak_qps is None or base.peak_qps is None:
            return None
        return 100 * self.peak_qps.median / base.peak_qps.median if base.peak_qps.median else None

    @property
    def p99_ms(self) -> float | None:
        return median([r.p99_ms for r in self.ok_rounds])

    def flags(self, ceiling_qps: float | None) -> list[str]:
        """What makes its figures suspect: wrk was the limit, or Little's law does not hold."""
        found = []
        peak = self.peak_qps
        if ceiling_qps and peak and peak.median >= GENERATOR_BOUND * ceiling_qps:
            found.append(f"wrk-bound ({100 * peak.median / ceiling_qps:.0f}% of ceiling)")
        for r in self.ok_rounds:
            if r.latency_avg_ms and r.connections:
                in_flight = r.peak_qps * r.latency_avg_ms / 1000
                if abs(in_flight / r.connections - 1) > LITTLE_TOLERANCE:
                    found.append(
                        f"Little's law off: c={r.connections}, QPS×latency={in_flight:.0f}"
                    )
                    break
        return found


def paired(rounds: list[Round], reference: list[Round]) -> list[tuple[Round, Round]]:
    """The rounds measured on both sides, matched by their number."""
    ref = {r.repeat: r for r in reference if r.ok}
    return [(r, ref[r.repeat]) for r in rounds if r.ok and r.repeat in ref]


def median(values: Sequence[float | None]) -> float | None:
    clean = sorted(v for v in values if v is not None and math.isfinite(v))
    if not clean:
        return None
    mid = len(clean) // 2
    return clean[mid] if len(clean) % 2 else (clean[mid - 1] + clean[mid]) / 2


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def contenders(
    targets: Sequence[str | Target],
    sets: Sequence[tuple[str, ...]],
    baseline: bool,
    servers: Sequence[str | None] = (None,),
    pythons: Sequence[str | None] = (None,),
    variants: Sequence[str | None] = (None,),
) -> list[Contender]:
    """Per variant, environment and server: every target with every set, then each target's
    raw baseline there (unless it is one of them)."""
    chosen_targets = [get_target(t) if isinstance(t, str) else t for t in targets]
    everything: list[Contender] = []
    for variant in variants or (None,):
        for python in pythons or (None,):
            for server in servers or (None,):
                everything += _one_place(chosen_targets, sets, baseline, server, python, variant)
    return everything


def _one_place(
    targets: list[Target],
    sets: Sequence[tuple[str, ...]],
    baseline: bool,
    server: str | None,
    python: str | None,
    variant: str | None,
) -> list[Contender]:
    chosen = [
        Contender(t, stack, "set", server, python, variant) for t in targets for stack in sets
    ]
    if baseline:
        for name in dict.fromkeys(t.baseline for t in targets):
            if name is None:
                continue
            base = Contender(get_target(name), (), "baseline", server, python, variant)
            if not any(c.target == base.target and c.stack == () for c in chosen):
                chosen.append(base)
    return chosen


def link(entries: list[Entry]) -> list[Entry]:
    """Set what each entry is measured against, on its own server in its own environment: a set
    with middlewares against its target's `none`, `none` against the raw baseline, the raw
    baseline against nothing; and the raw baseline whose QPS each one's share is of."""
    by_key = {(*_where(e), e.contender.target.name, e.contender.stack): e for e in entries}
    for entry in entries:
        target, where = entry.contender.target, _where(entry)
        none = by_key.get((*where, target.name, ()))
        base = by_key.get((*where, target.baseline, ())) if target.baseline else None
        reference = none if entry.contender.stack and none is not None else base
        entry.reference = reference if reference is not entry else None
        entry.baseline = base if base is not entry else None
    return entries


def _where(entry: Entry) -> tuple[str | None, str | None, str]:
    """Where an entry ran: its variant, its environment and its server."""
    return entry.contender.variant, entry.contender.python, entry.server


def shard_of(chosen: list[Contender], index: int, count: int) -> list[Contender]:
    """The contenders of shard `index` of `count` (from 1): every count-th set in table order,
    with what each is measured against (its `none`, the raw baseline, on its own server, in its
    own environment and variant), so that every overhead is paired within one shard."""
    entries = link([Entry(c, "", [], c.server or "") for c in chosen])
    sets = [e for e in entries if e.contender.role == "set"]
    keep: set[Contender] = set()
    for entry in sets[index - 1 :: count]:
        if entry.baseline is not None:  # what its share of the QPS is of
            keep.add(entry.baseline.contender)
        one: Entry | None = entry  # and down its references to the raw baseline
        while one is not None:
            keep.add(one.contender)
            one = one.reference
    return [c for c in chosen if c in keep]
