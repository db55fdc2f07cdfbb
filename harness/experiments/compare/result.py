"""A compare's report: its entries and rounds as measured, the settings and environment, and what
is derived from them (overheads, the servers and the environments against each other, the gate,
precision).

compare.json is this report's `to_dict()`: plain data with a schema name and version that
`CompareReport.load(path)` reads back. It stores every round's values; the estimates it also
writes are for its readers, and a loaded report computes them again from the rounds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import RunError
from harness.experiments.compare.axes import AxisRow, axis_rows
from harness.experiments.compare.contenders import Contender, Entry, Round, link
from harness.experiments.compare.environments import env_rows
from harness.experiments.compare.gate import Gate
from harness.experiments.compare.rounds import Precision, missed
from harness.load.files import read_versioned, versioned
from harness.measures.measure import Measure
from harness.measures.registry import get_measure
from harness.stats.intervals import Estimate, estimate_dict
from targets.table import TARGETS, Target

SCHEMA = "compare"
VERSION = 2  # 1: unversioned, CPU and 1/QPS hard-wired (before measures)


class ReportError(RunError):
    """A compare.json that cannot be read back; the message names the file."""


@dataclass(kw_only=True)
class CompareSettings:
    """How a compare was measured, as compare.json records it: what the plan resolved, then
    what the run found before and around its rounds (rates, the generator's floor, the native
    reference, capacities, how many rounds)."""

    measures: list[str] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)
    duration_s: float = 0.0
    warmup_s: float = 0.0
    timeout_s: float | None = None
    repeat: int = 1
    jobs: int = 1
    workers: int = 1
    worker_class: str | None = None  # the WSGI worker really used (compare's default: gthread)
    threads: int | None = None
    servers: list[str] | None = None
    pythons: list[dict[str, Any]] | None = None
    variants: list[dict[str, Any]] | None = None
    shard: dict[str, Any] | None = None
    pinning: str = ""
    server_cpus: list[int] | None = None
    wrk_cpus: list[int] | None = None
    request: dict[str, Any] = field(default_factory=dict)
    requests: int | None = None  # a fixed count per round, instead of a duration
    paced: bool = False  # that count sent one at a time, each to a blocked server
    slo: str | None = None
    log_output: str = ""
    wrapper: list[str] | None = None  # DIR for the output directory
    passed_env: dict[str, int] | None = None  # --pass-env: each variable's length, not its value
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Found by the run; absent from compare.json until then.
    rate_shares: list[float] | None = None
    closed_peaks: dict[str, Any] | None = None
    rates: list[float] | None = None
    generator: dict[str, Any] | None = None
    tuned_for_run: list[str] | None = None
    native_reference: list[dict[str, Any]] | None = None
    capacity: dict[str, Any] | None = None
    rounds: int | None = None
    budget_spent: bool | None = None
    merged_from: list[str] | None = None  # harness merge: the shards' compare.json

    FOUND_BY_THE_RUN: ClassVar[tuple[str, ...]] = (
        "rate_shares",
        "closed_peaks",
        "rates",
        "generator",
        "tuned_for_run",
        "native_reference",
        "capacity",
        "rounds",
        "budget_spent",
        "merged_from",
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: value
            for f in dataclasses.fields(self)
            if (value := getattr(self, f.name)) is not None or f.name not in self.FOUND_BY_THE_RUN
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareSettings:
        return cls(**data)


@dataclass
class ServerRow:
    """One server on one raw app, against the first server on the same app."""

    server: str
    app: str  # the raw target
    entry: Entry
    reference: Entry | None  # the first server's entry; None for the first server itself

    @property
    def qps_ratio(self) -> float | None:
        """Peak QPS over the reference's."""
        mine, first = self.entry.peak_qps, self.reference.peak_qps if self.reference else None
        return mine.median / first.median if mine and first and first.median else None

    def difference(self, measure: str) -> Estimate | None:
        return None if self.reference is None else self.entry.difference(self.reference, measure)

    def to_dict(self, measures: Sequence[str]) -> dict[str, Any]:
        entry = self.entry
        return {
            "server": self.server,
            "app": self.app,
            "name": entry.label,
            "peak_qps": entry.peak_qps.median if entry.peak_qps else None,
            "reference": self.reference.server if self.reference else None,
            "qps_ratio": self.qps_ratio,
            "costs": {m: estimate_dict(entry.cost(m)) for m in measures},
            "differences": {m: estimate_dict(self.difference(m)) for m in measures},
        }


def rows_by_server(entries: list[Entry], servers: Sequence[str]) -> list[ServerRow]:
    """The servers against each other on the raw app of each interface measured (the raw
    baseline, or a raw target's `none` set), each against the first server; [] with fewer than
    two servers."""
    if len(servers) < 2:
        return []
    raw = {
        (e.server, e.contender.target.name): e
        for e in entries
        if e.contender.target.is_raw and e.contender.stack == ()
    }
    rows = []
    for app in dict.fromkeys(name for _, name in raw):
        first = raw.get((servers[0], app))
        for server in servers:
            entry = raw.get((server, app))
            if entry is not None:
                rows.append(ServerRow(server, app, entry, first if entry is not first else None))
    return rows


@dataclass(kw_only=True)
class CompareReport:
    targets: list[str]
    baselines: list[str]
    entries: list[Entry]
    settings: CompareSettings
    out_dir: Path
    measures: tuple[str, ...] = ("cpu", "qps")  # the headline first
    servers: list[str] = field(default_factory=list)  # chosen as an axis; []: the defaults
    pythons: list[str] = field(default_factory=list)  # environments' names; []: the harness's
    variants: list[str] = field(default_factory=list)  # variants' names; []: none
    ceiling_qps: float | None = None
    interrupted: bool = False
    wall_s: float = 0.0
    gate: Gate | None = None
    precision: Precision | None = None
    files: list[Path] = field(default_factory=list)
    recorded_environment: dict[str, Any] | None = None  # a loaded report's; else the sweeps'
    source: Path | None = None  # the file a loaded report was read from
    # What each name of `measures` means, and each measure they are figures of: the objects the
    # report is read with, resolved once, when it is made or loaded.
    figures: dict[str, Measure] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.read_figures(self.measures)

    def read_figures(self, names: Sequence[str]) -> None:
        """The report reads `names` (the open model's, once its rates are known)."""
        self.measures = tuple(names)
        for name in (*self.measures, *(n.partition(":")[0] for n in self.measures)):
            if name not in self.figures:
                self.figures[name] = get_measure(name)

    def figure(self, name: str) -> Measure:
        """The measure (or a measure's figure) this report reads by `name`."""
        try:
            return self.figures[name]
        except KeyError:
            raise ReportError(
                f"this compare did not measure {name}; it measured {', '.join(self.measures)}"
            ) from None

    @property
    def json_path(self) -> Path:
        return self.source or self.out_dir / "compare.json"

    @property
    def headline(self) -> Measure:
        return self.figure(self.measures[0])

    @property
    def sets(self) -> list[Entry]:
        return [e for e in self.entries if e.contender.role == "set"]

    @property
    def missing(self) -> list[str]:
        return [m for e in self.entries for m in e.missing]

    @property
    def server_rows(self) -> list[ServerRow]:
        return rows_by_server(self.entries, self.servers)

    @property
    def env_rows(self) -> list[AxisRow]:
        return env_rows(self.entries, self.pythons)

    @property
    def variant_rows(self) -> list[AxisRow]:
        return axis_rows(self.entries, "variant", self.variants)

    @property
    def gate_failures(self) -> list[str]:
        if self.gate is None:
            return []
        return self.gate.failures(self.sets, self.figure(self.gate.measure).unit)

    @property
    def precision_missed(self) -> list[str]:
        if self.precision is None:
            return []
        return missed(self.entries, self.precision, self.figure(self.precision.measure).unit)

    def _native(self, entry: Entry) -> tuple[Entry, dict[str, Any]] | None:
        """The raw baseline `entry` is estimated through, and its native CPU time's estimate."""
        raw = entry if entry.contender.target.is_raw and not entry.contender.stack else None
        raw = raw or entry.baseline
        if raw is None or not self.headline.estimated_in_us:
            return None
        for native in self.settings.native_reference or []:
            where = (native["target"], native["server"], native.get("python"))
            if where == (raw.contender.target.name, raw.server, raw.contender.python):
                return raw, native["cpu_us"]
        return None

    def us_per_unit(self, entry: Entry) -> float | None:
        """What one unit of the headline costs in µs, for `entry`: its raw baseline's native CPU
        time per request over the baseline's count per request, both of this run (None where
        the headline is not estimated in µs, or no native reference was measured)."""
        found = self._native(entry)
        if found is None:
            return None
        raw, native = found
        counted = raw.cost(self.measures[0])
        return native["median"] / counted.median if counted and counted.median else None

    def estimated_us(self, entry: Entry, figure: Estimate | None) -> Estimate | None:
        """`figure` (in the headline's unit) as µs, by `us_per_unit`: an estimate, whose interval
        adds the native CPU time's relative uncertainty to the figure's own."""
        scale, found = self.us_per_unit(entry), self._native(entry)
        if figure is None or scale is None or found is None:
            return None
        native = found[1]
        relative = (native["half_width"] or 0.0) / native["median"]
        own = (figure.half_width or 0.0) * scale
        half = math.hypot(own, relative * abs(figure.median) * scale)
        middle = figure.median * scale
        return Estimate(middle, middle - half, middle + half, figure.n)

    def flags(self, entry: Entry) -> list[str]:
        """What makes `entry`'s figures suspect: wrk was the limit, Little's law does not hold,
        and what each measure says of its rounds (a rate not sustained, say)."""
        values = [r.values for r in entry.ok_rounds]
        bases = dict.fromkeys(name.partition(":")[0] for name in self.measures)
        return [
            *entry.flags(self.ceiling_qps),
            *(flag for base in bases for flag in self.figure(base).flags(values)),
        ]

    def find(self, label: str) -> Entry | None:
        return next((e for e in self.entries if e.label == label), None)

    @property
    def environment(self) -> dict[str, Any]:
        """Versions, CPUs, pinning and system state, as the first measured sweep recorded them
        (every round's NAME.json has its own)."""
        if self.recorded_environment is not None:
            return self.recorded_environment
        sweeps = (r.sweep for e in self.entries for r in e.rounds if r.sweep is not None)
        first = next(sweeps, None)
        return first.environment if first is not None else {}

    def to_dict(self) -> dict[str, Any]:
        return versioned(
            SCHEMA,
            VERSION,
            {
                "measures": [self.figure(m).describe() for m in self.measures],
                "target": ",".join(self.targets),
                "baseline": ",".join(dict.fromkeys(self.baselines)) or None,
                "servers": self.servers,
                "sets": [entry_dict(e, self) for e in self.sets],
                "order": [e.label for e in self.entries],  # the table's order, baselines included
                "baselines": [
                    entry_dict(e, self) for e in self.entries if e.contender.role != "set"
                ],
                "server_comparison": [row.to_dict(self.measures) for row in self.server_rows],
                "pythons": self.pythons,
                "python_comparison": [row.to_dict(self.measures) for row in self.env_rows],
                "variants": self.variants,
                "variant_comparison": [row.to_dict(self.measures) for row in self.variant_rows],
                "ceiling_qps": self.ceiling_qps,
                "settings": self.settings.to_dict(),
                "interrupted": self.interrupted,
                "missing": self.missing,
                "wall_s": round(self.wall_s, 1),
                "gate": self.gate.to_dict() if self.gate else None,
                "gate_failures": self.gate_failures,
                "precision": precision_dict(self.precision),
                "precision_missed": self.precision_missed,
                "environment": self.environment,
            },
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], out_dir: Path) -> CompareReport:
        """A report from its `to_dict()`: entries and rounds as stored, references relinked."""
        entries = [_entry(one) for one in [*data["sets"], *data.get("baselines", [])]]
        order = {label: i for i, label in enumerate(data.get("order") or [])}
        entries.sort(key=lambda e: order.get(e.label, 0))
        gate, precision = data.get("gate"), data.get("precision")
        return cls(
            targets=[t for t in str(data["target"]).split(",") if t],
            baselines=[b for b in str(data.get("baseline") or "").split(",") if b],
            entries=link(entries),
            settings=CompareSettings.from_dict(data["settings"]),
            out_dir=out_dir,
            measures=tuple(m["name"] for m in data["measures"]),
            servers=list(data.get("servers") or []),
            pythons=list(data.get("pythons") or []),
            variants=list(data.get("variants") or []),
            ceiling_qps=data.get("ceiling_qps"),
            interrupted=bool(data.get("interrupted")),
            wall_s=float(data.get("wall_s") or 0.0),
            gate=Gate(**gate) if gate else None,
            precision=Precision(**precision) if precision else None,
            recorded_environment=dict(data.get("environment") or {}),
        )

    @classmethod
    def load(cls, path: Path | str) -> CompareReport:
        """compare.json read back; ReportError (one line, naming the file) when it is not one
        this version can read."""
        path = Path(path)
        data = read_versioned(
            path, schema=SCHEMA, versions={VERSION}, error=ReportError, what="compare.json"
        )
        try:
            return dataclasses.replace(cls.from_dict(data, path.parent), source=path)
        except KeyError as exc:
            raise ReportError(f"{path}: not a whole compare.json: no {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:  # a field of another shape
            raise ReportError(f"{path}: not a well-formed compare.json: {exc}") from None


def precision_dict(precision: Precision | None) -> dict[str, Any] | None:
    if precision is None:
        return None
    return {
        "target": precision.target,
        "budget_s": precision.budget_s,
        "measure": precision.measure,
        "of_cost": precision.of_cost,
        "min_rounds": precision.min_rounds,
        "clear_of_zero": precision.clear_of_zero,
        "required": precision.required,
    }


def _target_dict(target: Target) -> dict[str, Any]:
    return {
        "name": target.name,
        "framework": target.framework,
        "interface": target.interface,
        "module": target.module,
        "server": target.server,
        "baseline": target.baseline,
        "app": target.app,
        "factory": target.factory,
        "app_dir": target.app_dir,
        "layers": list(target.layers),
    }


def _target(data: dict[str, Any]) -> Target:
    known = TARGETS.get(data["name"])
    if known is not None and data.get("app") is None:
        return known
    return Target(**{**data, "layers": tuple(data.get("layers") or ())})


def entry_dict(entry: Entry, report: CompareReport) -> dict[str, Any]:
    """One entry as compare.json stores it: who, against what, its rounds; and, derived for the
    reader, its estimates in every measure."""
    measures = report.measures
    headline = entry.overhead(measures[0])
    estimated = report.estimated_us(entry, headline)
    cpu = entry.overhead("cpu") if "cpu" in measures else estimated
    return {
        "name": entry.label,
        "target": entry.contender.target.name,
        "target_spec": _target_dict(entry.contender.target),
        "server": entry.server,
        "chosen_server": entry.contender.server,
        "python": entry.contender.python,
        "variant": entry.contender.variant,
        "role": entry.contender.role,
        "middlewares": list(entry.contender.stack),
        "reference": entry.reference.label if entry.reference else None,
        "invalid": entry.invalid,
        "peak_qps": entry.peak_qps.median if entry.peak_qps else None,
        "peak_qps_estimate": estimate_dict(entry.peak_qps),
        "pct_of_baseline": entry.pct_of_baseline,
        "p99_ms_at_peak": entry.p99_ms,
        # The figure SPEC section 4 names: server CPU µs per request over the reference (where
        # CPU time was not measured, the headline's estimate in µs).
        "overhead_us_per_request": cpu.median if cpu else None,
        "costs": {m: estimate_dict(entry.cost(m)) for m in measures},
        "overheads": {m: estimate_dict(entry.overhead(m)) for m in measures},
        "half_width": headline.half_width if headline else None,
        "estimated_us": {
            "cost": estimate_dict(report.estimated_us(entry, entry.cost(measures[0]))),
            "overhead": estimate_dict(estimated),
            "us_per_unit": report.us_per_unit(entry),
        },
        "rounds_used": len(entry.ok_rounds),
        "flags": report.flags(entry),
        "rounds": [r.to_dict() for r in entry.rounds],
    }


def _entry(data: dict[str, Any]) -> Entry:
    contender = Contender(
        _target(data["target_spec"]),
        tuple(data["middlewares"]),
        data["role"],
        data.get("chosen_server"),
        data.get("python"),
        data.get("variant"),
    )
    rounds = [Round.from_dict(r) for r in data["rounds"]]
    return Entry(contender, data["name"], rounds, data.get("server", ""), invalid=data["invalid"])
