"""(i) memory: allocations per request of every built-in middleware in-process (micro --memory),
and how often `--measure memory` flags a built-in set that does not leak: `compare -t T -m each
--measure memory -r 2`, RUNS times per target, every flag counted; with each run's detection
limit (the smallest slope its rounds tell from zero)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import fmt_num, part_result, table
from harness.experiments.compare.render_memory import detection_limit
from harness.experiments.compare.run import compare
from harness.experiments.micro import micro
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.serving.settings import ServeSettings
from middleware.stack import parse_sets

RUNS = 3
TARGETS = ("starlette", "flask", "aiohttp")


def _allocations(echo: Callable[[str], None]) -> dict[str, Any]:
    echo("memory: allocations per request in-process, every middleware")
    report = micro(targets=list(TARGETS), sets=parse_sets("each"), repeat=2, memory=True)
    return {
        one.target: {s.name: s.allocations.to_dict() | {"stacks": None} for s in one.sets
                     if s.allocations is not None}
        for one in report.targets
    }  # fmt: skip


def _false_positives(base: Path, runs: int, echo: Callable[[str], None]) -> dict[str, Any]:
    cpus = plan()
    found: dict[str, Any] = {}
    for target in TARGETS:
        one: dict[str, Any] = {"flagged": [], "sets": 0, "limits": [], "retained": {}}
        for run in range(runs):
            echo(f"memory: {target} -m each --measure memory -r 2, run {run + 1} of {runs}")
            report = compare(
                targets=[target], sets=parse_sets("each"), measures=("memory",), repeat=2,
                serve=ServeSettings(cpus=cpus.server), load=LoadSettings(cpus=cpus.load),
                out_dir=base / f"{target}-{run}", echo=lambda line: None,
            )  # fmt: skip
            for entry in report.entries:
                one["sets"] += 1
                flags = [f for f in report.flags(entry) if f.startswith("leaking")]
                if flags:
                    one["flagged"].append(f"{entry.label} (run {run + 1}): {flags[0]}")
                cost = entry.cost("memory:retained")
                if cost is not None:
                    one["retained"].setdefault(entry.label, []).append(round(cost.median))
            limit = detection_limit(report)
            if limit is not None:
                one["limits"].append(round(limit))
        found[target] = one
    return found


def run(runs: int = RUNS, echo: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    data: dict[str, Any] = {"runs": runs}
    data["allocations"] = _allocations(echo)
    with tempfile.TemporaryDirectory(prefix="mwbench-memory-") as tmp:
        data["false_positives"] = _false_positives(Path(tmp), runs, echo)
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    targets = list(data["allocations"])
    names = list(next(iter(data["allocations"].values())))
    rows = []
    for name in names:
        row = [name]
        for target in targets:
            a = data["allocations"][target].get(name)
            row += [fmt_num(a["blocks_per_request"], 1), fmt_num(a["bytes_per_request"] / 1024, 2),
                    fmt_num(a["retained_per_1000_requests"], 0)] if a else ["—"] * 3  # fmt: skip
        rows.append(row)
    columns = ["set"] + [f"{t} {c}" for t in targets for c in ("blocks", "KB", "retained/1k")]
    out.append(table("allocations per request in-process (memray), per set", columns, rows))
    rows = []
    for target, one in data["false_positives"].items():
        limits = one["limits"]
        rate = 100 * len(one["flagged"]) / max(one["sets"], 1)
        limit = fmt_num(statistics.median(limits), 0) if limits else "—"
        rows.append([target, str(one["sets"]), str(len(one["flagged"])), f"{rate:.1f}%", limit])
    title = f"--measure memory on sets that do not leak: {data['runs']} runs of -m each -r 2"
    columns = ["target", "set-runs", "flagged", "rate", "detection limit B/1k req"]
    out.append(table(title, columns, rows))
    return out


def notes(data: dict[str, Any]) -> list[str]:
    lines = []
    for target, one in data["false_positives"].items():
        worst = max((max(v) for v in one["retained"].values()), default=0)
        flagged = f"; flagged: {'; '.join(one['flagged'])}" if one["flagged"] else ""
        lines.append(
            f"{target}: the largest retained of any set in any run: {worst:,} B per 1,000 "
            f"requests{flagged}"
        )
    return lines
