"""Part (c): the harness's precision. The same `compare`, run twice, back to back: how far the two
agree per set (overhead in µs, peak QPS in %), and how narrow an interval a minute buys.

The interval half-width shrinks as 1/√(rounds), so the half-width one minute of wall time would
reach is half-width × √(wall minutes): that is the "per minute" figure, for both cost measures
(server CPU time per request, the headline; and 1e6/QPS).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.report import fmt_num, fmt_pct, half_width, part_result, table
from harness.experiments.compare.run import compare
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.serving.settings import ServeSettings
from middleware.stack import ORDER


def run_twice(
    *,
    targets: Sequence[str] = ("starlette",),
    sets: Sequence[tuple[str, ...]] = ((), ORDER),
    repeat: int = 3,
    duration: float = 3.0,
    warmup: float = 1.0,
    level: int = 64,
    out_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Two compare.json documents of identical settings."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="mwbench-precision-") as tmp:
        base = out_dir or Path(tmp)
        for index in (1, 2):
            echo(f"precision: compare run {index} of 2")
            cpus = plan()
            report = compare(
                targets=list(targets),
                sets=list(sets),
                repeat=repeat,
                serve=ServeSettings(cpus=cpus.server),
                load=LoadSettings(
                    levels=(level,), duration=duration, warmup=warmup, cpus=cpus.load
                ),
                ceiling=False,
                out_dir=base / f"run{index}",
                echo=lambda line: echo(f"  {line}"),
            )
            runs.append(report.to_dict())
    return runs


def _entries(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in [*document["sets"], *document["baselines"]]}


def agreement(first: dict[str, Any], second: dict[str, Any]) -> list[dict[str, Any]]:
    """Per set (and baseline) present in both: the two runs' figures and their differences."""
    a, b = _entries(first), _entries(second)
    wall = [first["wall_s"] / 60, second["wall_s"] / 60]
    rows = []
    for name in a:
        if name not in b:
            continue
        one, two = a[name], b[name]
        row: dict[str, Any] = {"name": name, "reference": one.get("reference")}
        q1, q2 = one.get("peak_qps"), two.get("peak_qps")
        row["peak_qps"] = [q1, q2]
        row["peak_qps_diff_pct"] = 100 * (q2 - q1) / ((q1 + q2) / 2) if q1 and q2 else None
        for measure in ("cpu", "qps"):
            e1, e2 = one["overheads"].get(measure), two["overheads"].get(measure)
            m1 = e1["median"] if e1 else None
            m2 = e2["median"] if e2 else None
            hws = [half_width(e1), half_width(e2)]
            row[f"overhead_{measure}_us"] = [m1, m2]
            row[f"overhead_{measure}_diff_us"] = (
                m2 - m1 if m1 is not None and m2 is not None else None
            )
            row[f"overhead_{measure}_half_width_us"] = hws
            row[f"overhead_{measure}_half_width_per_minute_us"] = [
                hw * math.sqrt(w) if hw is not None else None
                for hw, w in zip(hws, wall, strict=True)
            ]
        rows.append(row)
    return rows


def _pair(values: Sequence[float | None], digits: int = 1) -> str:
    return " / ".join(fmt_num(v, digits) for v in values)


def run(
    *,
    repeat: int = 3,
    duration: float = 3.0,
    warmup: float = 1.0,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    started = time.monotonic()
    first, second = run_twice(repeat=repeat, duration=duration, warmup=warmup, echo=echo)
    rows = agreement(first, second)
    data = {
        "command": f"harness compare -t starlette -m none,all --repeat {repeat} -c 64 "
        f"--duration {duration:g}s --warmup {warmup:g}s --no-ceiling --no-charts",
        "wall_s": [first["wall_s"], second["wall_s"]],
        "rows": rows,
        "runs": [_slim(first), _slim(second)],
    }
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def _slim(document: dict[str, Any]) -> dict[str, Any]:
    """compare.json without the per-round file paths (they were in a temporary directory)."""
    keep = ("name", "reference", "peak_qps", "peak_qps_estimate", "costs", "overheads",
            "flags")  # fmt: skip
    return {
        "settings": document["settings"],
        "wall_s": document["wall_s"],
        "entries": [
            {k: e.get(k) for k in keep} for e in [*document["sets"], *document["baselines"]]
        ],
    }


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in data["rows"]:
        rows.append(
            [
                r["name"],
                r["reference"] or "—",
                _pair(r["peak_qps"], 0),
                fmt_pct(r["peak_qps_diff_pct"]),
                _pair(r["overhead_cpu_us"]),
                fmt_num(r["overhead_cpu_diff_us"], 1),
                _pair(r["overhead_qps_us"]),
                fmt_num(r["overhead_qps_diff_us"], 1),
            ]
        )
    agree = table(
        "(c) the same compare twice: run 1 / run 2 and the difference",
        ["set", "vs", "peak QPS", "Δ QPS", "overhead CPU µs", "Δ µs", "overhead 1/QPS µs", "Δ µs"],
        rows,
    )
    widths = []
    for r in data["rows"]:
        if r["reference"] is None:
            continue
        widths.append(
            [
                r["name"],
                _pair(r["overhead_cpu_half_width_us"], 2),
                _pair(r["overhead_cpu_half_width_per_minute_us"], 2),
                _pair(r["overhead_qps_half_width_us"], 2),
                _pair(r["overhead_qps_half_width_per_minute_us"], 2),
            ]
        )
    width = table(
        "(c) 95% half-width of the overhead reached (run 1 / run 2), and scaled to one minute "
        f"of wall time (runs took {_pair([w / 60 for w in data['wall_s']], 2)} min)",
        ["set", "CPU ±µs", "CPU ±µs in 1 min", "1/QPS ±µs", "1/QPS ±µs in 1 min"],
        widths,
    )
    return [agree, width]


def notes(data: dict[str, Any]) -> list[str]:
    return [
        f"command (run twice, back to back): {data['command']}",
        "overhead of a set is against its reference: `all` against `none`, `none` against the "
        "raw baseline (raw-asgi); the baseline row has peak QPS only",
        "half-width per minute = half-width × √(wall minutes of that run): the interval one "
        "minute of this kind of measurement buys, assuming 1/√n",
    ]
