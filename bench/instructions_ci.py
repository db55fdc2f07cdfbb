"""(j) `--measure instructions` in CI: every core at once and a matrix of shards.

- jobs: Starlette `-m each --measure instructions -r 2` one contender at a time (`--jobs 1`)
  and two at once (`--jobs 2`, a server and its wrk per core): the wall time, the time per set,
  and how far each set's count per request moves between the two;
- shards: the same compare as two shards (`--shard 1/2`, `--shard 2/2`) merged
  (harness.experiments.compare.merge) against the one-at-a-time run, per set.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import fmt_num, fmt_pct, part_result, table
from harness.experiments.compare.merge import merge
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.run import compare
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.serving.settings import ServeSettings
from middleware.stack import parse_sets

TARGET, SETS, WINDOW, REPEAT = "starlette", "each", 600, 2


def _compare(out: Path, **fields: Any) -> CompareReport:
    cpus = plan()
    return compare(
        targets=[TARGET],
        sets=parse_sets(SETS),
        measures=("instructions",),
        repeat=REPEAT,
        serve=ServeSettings(cpus=cpus.server),
        load=LoadSettings(cpus=cpus.load, requests=WINDOW),
        out_dir=out,
        echo=lambda line: None,
        **fields,
    )


def _counts(report: CompareReport) -> dict[str, float | None]:
    """Every contender's instructions per request (the median of its rounds), by label."""
    found = {}
    for entry in report.entries:
        cost = entry.cost("instructions")
        found[entry.label] = cost.median if cost else None
    return found


def _apart_pct(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or not a else 100 * (b - a) / a


def run(echo: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    data: dict[str, Any] = {"target": TARGET, "sets": SETS, "window": WINDOW, "repeat": REPEAT}
    with tempfile.TemporaryDirectory(prefix="mwbench-instructions-ci-") as tmp:
        base = Path(tmp)
        runs = {}
        for jobs in (1, 2):
            echo(f"instructions in CI: {TARGET} -m {SETS} -r {REPEAT}, --jobs {jobs}")
            runs[jobs] = _compare(base / f"jobs{jobs}", jobs=jobs)
        shards = []
        for k in (1, 2):
            echo(f"instructions in CI: {TARGET} -m {SETS} -r {REPEAT}, --shard {k}/2")
            shards.append(_compare(base / f"shard{k}", shard=(k, 2), jobs=2))
        merged = merge(shards, base / "merged")
    sequential, parallel = _counts(runs[1]), _counts(runs[2])
    data["jobs"] = {
        str(jobs): {
            "wall_s": round(report.wall_s, 1),
            "contenders": len(report.entries),
            "per_set_s": round(report.wall_s / len(report.entries), 1),
            "counts": _counts(report),
        }
        for jobs, report in runs.items()
    }
    data["parallel_share"] = round(runs[2].wall_s / runs[1].wall_s, 3)
    data["parallel_apart_pct"] = {k: _apart_pct(v, parallel.get(k)) for k, v in sequential.items()}
    data["shards_wall_s"] = [round(s.wall_s, 1) for s in shards]
    merged_counts = _counts(merged)
    data["merged_apart_pct"] = {
        k: _apart_pct(v, merged_counts.get(k)) for k, v in sequential.items()
    }
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    seq, par = data["jobs"]["1"], data["jobs"]["2"]
    rows = [
        [
            label,
            fmt_num(count, 0),
            fmt_num(par["counts"].get(label), 0),
            fmt_pct(data["parallel_apart_pct"].get(label), 3),
            fmt_pct(data["merged_apart_pct"].get(label), 3),
        ]
        for label, count in seq["counts"].items()
    ]
    title = f"{data['target']} -m {data['sets']} --measure instructions -r {data['repeat']}"
    columns = ["contender", "--jobs 1", "--jobs 2", "2 vs 1", "2 shards merged vs 1"]
    return [table(f"{title}: instructions per request", columns, rows)]


def notes(data: dict[str, Any]) -> list[str]:
    seq, par = data["jobs"]["1"], data["jobs"]["2"]
    return [
        f"--jobs 1: {seq['wall_s']:g} s, {seq['per_set_s']:g} s per contender; --jobs 2: "
        f"{par['wall_s']:g} s, {par['per_set_s']:g} s per contender "
        f"({100 * data['parallel_share']:.0f}% of the sequential time)",
        f"two shards (--jobs 2 each): {' + '.join(f'{w:g}' for w in data['shards_wall_s'])} s",
    ]
