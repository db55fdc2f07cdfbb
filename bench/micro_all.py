"""Part (a): every middleware on every framework, in-process (harness micro), beside `none`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bench.report import fmt_est, fmt_num, part_result, table
from harness.experiments.micro import MICRO_TARGETS, micro
from middleware.stack import ORDER, parse_sets


def run(
    *,
    targets: Sequence[str] = MICRO_TARGETS,
    repeat: int = 15,
    batch_s: float = 0.04,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    report = micro(
        targets=targets, sets=parse_sets("each"), repeat=repeat, batch_s=batch_s, echo=echo
    )
    data = report.to_dict()
    return part_result(report.wall_s, tables(data), notes(data), data)


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Sets down, targets across: the loop and `none` as µs/request, every other set as the
    overhead it adds to `none` (paired by repeat), `median ±half-width` of the 95% interval."""
    targets = data["targets"]
    columns = ["set", *(t["target"] for t in targets)]
    rows: list[list[str]] = [
        ["(empty app: the loop)", *(fmt_est(t["loop"]["us_per_request"]) for t in targets)]
    ]
    names = ["none", *ORDER, "all"]
    by_target = [{s["name"]: s for s in t["sets"]} for t in targets]
    for name in names:
        row = [name if name == "none" else f"+ {name}"]
        for sets in by_target:
            one = sets.get(name)
            if one is None:
                row.append("—")
            elif name == "none":
                row.append(fmt_est(one["us_per_request"]))
            else:
                row.append(fmt_est(one["overhead_us"], sign=True))
        rows.append(row)
    matrix = table(
        "(a) in-process µs per request: loop and none absolute, each set as added over none "
        "(median ±95% half-width)",
        columns,
        rows,
    )
    own = table(
        "(a) the framework's own cost: none minus the empty app of its interface (µs)",
        ["target", "interface", "none − empty", "requests per batch (none)"],
        [
            [
                t["target"],
                t["interface"],
                fmt_est(t["none_minus_loop_us"]),
                str(next(s["requests"] for s in t["sets"] if s["name"] == "none")),
            ]
            for t in targets
        ],
    )
    return [matrix, own]


def notes(data: dict[str, Any]) -> list[str]:
    settings = data["settings"]
    lines = [
        f"{settings['repeat']} repeats, each a timed batch of ~{fmt_num(settings['batch_s'], 2)} s "
        "per app, interleaved and rotated; logs to the null sink (formatted, not written)",
        f"request: {settings['request']['method']} {settings['request']['path']}, "
        "headers as wrk sends them (Host only): cors adds nothing without Origin",
        f"excluded: {data['excluded']}",
    ]
    for t in data["targets"]:
        over = [
            (s["name"], s["overhead_us"]["median"])
            for s in t["sets"]
            if s["overhead_us"] and s["name"] != "all"
        ]
        if over:
            name, worst = max(over, key=lambda x: x[1])
            lines.append(f"{t['target']}: costliest single middleware {name} (+{worst:.1f} µs)")
    return lines
