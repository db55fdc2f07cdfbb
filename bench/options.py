"""Part (f): precision per minute of measurement, for every framework target, before and after
this round's defaults; and for Flask, the options that decide its variance.

Each configuration is one `compare -m none,dump,all` of a fixed number of interleaved rounds (raw
baseline included); the figure is the 95% half-width of each set's overhead (server CPU µs per
request) times √(wall minutes): the interval one minute of that measurement buys, assuming 1/√n.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import fmt_num, part_result, table
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.run import compare
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.serving.settings import ServeSettings
from harness.stats.intervals import estimate, paired_differences
from middleware.stack import parse_sets

FRAMEWORKS = ("flask", "starlette", "fastapi", "aiohttp")
SETS = "none,dump,all"
# before: the defaults as they were (sync worker for WSGI, the machine as it comes);
# after: as they are now (the machine tuned for the run, gthread for WSGI targets).
CONFIGS: dict[str, dict[str, Any]] = {
    "before": {"tune": False, "worker_class": "sync"},
    "after": {"tune": True, "worker_class": "gthread"},
}
FLASK_OPTIONS: dict[str, dict[str, Any]] = {
    "sync, 1 s rounds": {"worker_class": "sync"},
    "sync, 3 s rounds": {"worker_class": "sync", "duration": 3.0},
    "sync, workers' CPU only": {"worker_class": "sync", "workers_only": True},
    "gthread (keep-alive), 1 s rounds": {"worker_class": "gthread"},
    "gthread, 3 s rounds": {"worker_class": "gthread", "duration": 3.0},
}


def _per_minute(report: CompareReport, workers_only: bool = False) -> dict[str, float | None]:
    """Each set's overhead half-width × √(wall minutes); with `workers_only`, the overhead is
    recomputed from the serving processes' CPU time alone (gunicorn's arbiter left out)."""
    minutes = report.wall_s / 60
    found: dict[str, float | None] = {}
    for entry in report.sets:
        if entry.reference is None:
            continue
        est = entry.overhead("cpu")
        if workers_only:
            mine, theirs = _worker_costs(entry.rounds), _worker_costs(entry.reference.rounds)
            diffs = paired_differences(mine, theirs)
            est = estimate(diffs) if diffs else None
        width = est.half_width if est is not None else None
        found[entry.label] = width * math.sqrt(minutes) if width is not None else None
    return found


def _worker_costs(rounds: list[Any]) -> list[float]:
    costs = []
    for r in rounds:
        peak = r.sweep.peak if r.status == "ok" and r.sweep is not None else None
        cpu = peak.extra.get("workers_cpu_s") if peak is not None else None
        costs.append(1e6 * cpu / peak.requests if cpu and peak and peak.requests else math.nan)
    return costs


def _compare(target: str, out: Path, rounds: int, **options: Any) -> CompareReport:
    options = dict(options)
    worker_class = options.pop("worker_class", None) if target == "flask" else None
    options.pop("worker_class", None)  # a WSGI option
    cpus = plan()
    return compare(
        targets=[target],
        sets=parse_sets(SETS),
        repeat=rounds,
        serve=ServeSettings(worker_class=worker_class, cpus=cpus.server),
        load=LoadSettings(duration=options.pop("duration", 1.0), warmup=0.0, cpus=cpus.load),
        ceiling=False,
        out_dir=out,
        echo=lambda line: None,
        **options,
    )


def run(rounds: int = 5, echo: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    data: dict[str, Any] = {"rounds": rounds, "targets": {}, "flask": {}}
    with tempfile.TemporaryDirectory(prefix="mwbench-options-") as tmp:
        for target in FRAMEWORKS:
            for config, options in CONFIGS.items():
                echo(f"options: {target} {config}")
                report = _compare(target, Path(tmp) / f"{target}-{config}", rounds, **options)
                data["targets"].setdefault(target, {})[config] = {
                    "per_minute_us": _per_minute(report),
                    "wall_s": round(report.wall_s, 1),
                }
        for label, options in FLASK_OPTIONS.items():
            echo(f"options: flask {label}")
            options = dict(options)
            workers_only = options.pop("workers_only", False)
            report = _compare("flask", Path(tmp) / f"flask-{len(data['flask'])}", rounds,
                              tune=True, **options)  # fmt: skip
            data["flask"][label] = {
                "per_minute_us": _per_minute(report, workers_only),
                "overhead_us": {e.label: o.median for e in report.sets if (o := e.overhead("cpu"))},
                "wall_s": round(report.wall_s, 1),
            }
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for target, configs in data["targets"].items():
        for config, one in configs.items():
            widths = one["per_minute_us"]
            rows.append(
                [target, config, *(fmt_num(widths.get(s), 2) for s in ("none", "dump", "all"))]
            )
    flask_rows = []
    for label, one in data["flask"].items():
        widths, medians = one["per_minute_us"], one["overhead_us"]
        flask_rows.append(
            [
                label,
                *(
                    f"{fmt_num(medians.get(s), 1)} ±{fmt_num(widths.get(s), 2)}"
                    for s in ("dump", "all")
                ),
            ]
        )
    return [
        table(
            "(f) 95% half-width of the overhead (CPU µs/request) that one minute buys",
            ["target", "defaults", "none (vs raw)", "dump", "all"],
            rows,
        ),
        table(
            "(f) flask: overhead, and its half-width per minute, by option",
            ["option", "dump µs ±/min", "all µs ±/min"],
            flask_rows,
        ),
    ]


def notes(data: dict[str, Any]) -> list[str]:
    return [
        f"each configuration: compare -m {SETS}, {data['rounds']} interleaved rounds of 1 s "
        "(3 s where said), 64 connections, raw baseline included",
        "before: --no-tune, sync worker for WSGI; after: tuned for the run, gthread for WSGI",
    ]
