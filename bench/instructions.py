"""(g) `--measure instructions`: how far runs agree, what still varies, the time per set, and
instructions over the wire against in-process (micro under callgrind) for every middleware.

- runs: `harness compare -t T -m each --measure instructions -r 2`, RUNS times, for Starlette
  and Flask: each set's instructions per request in every run, their spread, and the time a
  contender's round takes;
- varies: for Starlette's none and all, what a round's count depends on besides the code: a
  random hash seed instead of the fixed one, and the window's size (300 against 1,200
  requests: what a window costs besides its requests);
- agreement: every middleware's overhead in-process (micro --clock instructions, logs to null)
  against over the wire (the same, logs to null), in instructions.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.report import fmt_num, fmt_pct, part_result, table
from harness.experiments.compare.result import CompareReport
from harness.experiments.compare.run import compare
from harness.experiments.micro import micro
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.serving.settings import ServeSettings
from middleware.stack import parse_sets

RUNS = 5
WINDOWS = {"starlette": 600, "flask": 300}  # Flask under callgrind answers ~80 requests a second


def _compare(
    target: str, sets: str, out: Path, *, requests: int, repeat: int = 2, **serve: Any
) -> CompareReport:
    cpus = plan()
    return compare(
        targets=[target], sets=parse_sets(sets), measures=("instructions",), repeat=repeat,
        serve=ServeSettings(cpus=cpus.server, **serve),
        load=LoadSettings(cpus=cpus.load, requests=requests),
        out_dir=out, echo=lambda line: None,
    )  # fmt: skip


def _runs(target: str, base: Path, runs: int, echo: Callable[[str], None]) -> dict[str, Any]:
    found: dict[str, Any] = {"sets": {}, "wall_s": [], "per_contender_round_s": []}
    for run in range(runs):
        echo(f"instructions: {target} -m each, run {run + 1} of {runs}")
        report = _compare(target, "each", base / f"{target}-{run}", requests=WINDOWS[target])
        rounds = sum(len(e.ok_rounds) for e in report.entries)
        found["wall_s"].append(round(report.wall_s, 1))
        found["per_contender_round_s"].append(round(report.wall_s / max(rounds, 1), 2))
        for entry in report.entries:
            cost, extra = entry.cost("instructions"), entry.overhead("instructions")
            est = report.estimated_us(entry, extra)
            one = found["sets"].setdefault(entry.label, {"cost": [], "overhead": [], "us": []})
            one["cost"].append(cost.median if cost else None)
            one["overhead"].append(extra.median if extra else None)
            one["significant"] = one.get("significant", True) and bool(extra and extra.significant)
            one["us"].append(est.median if est else None)
    return found


def _spread_pct(values: Sequence[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    if len(clean) < 2 or not statistics.median(clean):
        return None
    return 100 * (max(clean) - min(clean)) / statistics.median(clean)


def _varies(base: Path, echo: Callable[[str], None]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    random_seed = ("env", "PYTHONHASHSEED=random")  # inside valgrind: overrides its fixed seed
    conditions: list[tuple[str, int, tuple[str, ...]]] = [
        ("fixed seed, 600 requests", 600, ()),
        ("random seed, 600 requests", 600, random_seed),
        ("fixed seed, 300 requests", 300, ()),
        ("fixed seed, 1,200 requests", 1200, ()),
    ]
    for label, requests, wrapper in conditions:
        echo(f"instructions: starlette none,all, {label}")
        out = base / label.replace(" ", "-")
        report = _compare("starlette", "none,all", out, requests=requests, repeat=3,
                          wrapper=wrapper)  # fmt: skip
        found[label] = {
            e.label: e.values("instructions") for e in report.entries if e.contender.role == "set"
        }
    return found


def _agreement(target: str, base: Path, echo: Callable[[str], None]) -> dict[str, Any]:
    echo(f"instructions: {target} each, in-process and over the wire, logs to null")
    inproc = micro(
        targets=[target], sets=parse_sets("each"), repeat=2, clock="instructions",
        log_output="null",
    )  # fmt: skip
    wire = _compare(target, "each", base / f"{target}-null", requests=WINDOWS[target],
                    log_output="null")  # fmt: skip
    rows = {}
    for s in inproc.targets[0].sets:
        entry = wire.find(s.name)
        over = entry.overhead("instructions") if entry else None
        rows[s.name] = {
            "in_process": s.overhead.median if s.overhead else None,
            "wire": over.median if over else None,
        }
    return rows


def run(runs: int = RUNS, echo: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    data: dict[str, Any] = {"runs": runs, "windows": WINDOWS}
    with tempfile.TemporaryDirectory(prefix="mwbench-instructions-") as tmp:
        base = Path(tmp)
        data["targets"] = {t: _runs(t, base, runs, echo) for t in ("starlette", "flask")}
        data["varies"] = _varies(base, echo)
        data["agreement"] = {t: _agreement(t, base, echo) for t in ("starlette", "flask")}
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for target, found in data["targets"].items():
        rows = []
        for label, one in found["sets"].items():
            costs = [c for c in one["cost"] if c is not None]
            overs = [o for o in one["overhead"] if o is not None]
            us = [u for u in one["us"] if u is not None]
            rows.append([
                label,
                fmt_num(statistics.median(costs), 0) if costs else "—",
                fmt_num(statistics.median(overs), 0) if overs else "—",
                fmt_num(statistics.median(us), 1) if us else "—",
                fmt_pct(_spread_pct(one["cost"]), 3, sign=False),
                "yes" if one.get("significant") else "no",
            ])  # fmt: skip
        out.append(table(
            f"{target} -m each --measure instructions -r 2, {data['runs']} runs (medians)",
            ["set", "instructions/req", "overhead", "≈ overhead µs (est.)",
             f"spread over {data['runs']} runs", "significant in every run"],
            rows,
        ))  # fmt: skip
    rows = []
    for label, sets in data["varies"].items():
        cells = [
            f"{fmt_num(statistics.median(v), 0)} (spread {fmt_pct(_spread_pct(v), 3, sign=False)})"
            for v in sets.values()
        ]
        rows.append([label, *cells])
    out.append(table("What a round's count depends on (starlette, 3 rounds each)",
                     ["condition", "none", "all"], rows))  # fmt: skip
    for target, agree in data["agreement"].items():
        out.append(table(
            f"{target}: overhead in instructions, in-process against over the wire (logs: null)",
            ["set", "in-process", "over the wire", "wire − in-process"],
            [[name, fmt_num(r["in_process"], 0), fmt_num(r["wire"], 0),
              fmt_pct(100 * (r["wire"] - r["in_process"]) / r["in_process"], 1)
              if r["wire"] and r["in_process"] else "—"] for name, r in agree.items()],
        ))  # fmt: skip
    return out


def notes(data: dict[str, Any]) -> list[str]:
    lines = []
    for target, found in data["targets"].items():
        lines.append(
            f"{target}: a run took {', '.join(f'{w:g}' for w in found['wall_s'])} s, "
            f"{statistics.median(found['per_contender_round_s']):.1f} s per contender per round "
            f"(window {data['windows'][target]} requests)"
        )
    return lines
