"""Part (e): each middleware's cost in-process (`harness micro`) against over the wire
(`harness compare`), the same request both ways, and the causes of a gap measured one by one.

In-process runs micro's request, which is the request wrk sends (`GET /healthz`, `Host` only:
MicroRequest.from_wire), with the middlewares' log lines written to a file like compare's (and
to `null`, to see what writing costs). Over the wire: `compare -m each`, tuned for the run, with
precision rounds; then dump alone against none three more ways: logs to `null`, the machine not
tuned (idle CPUs halting at once), and both.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import fmt_est, part_result, table
from harness.experiments.compare.rounds import Precision
from harness.experiments.compare.run import compare
from harness.experiments.micro import MicroRequest, micro
from harness.load.request import Request
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.serving.settings import ServeSettings
from middleware.stack import ORDER, parse_sets


def _micro(target: str, log_output: str, repeat: int) -> dict[str, Any]:
    report = micro(
        targets=[target],
        sets=parse_sets("each"),
        repeat=repeat,
        request=MicroRequest.from_wire(Request(expect_status=200)),
        log_output=log_output,
    )
    return {s.name: s.overhead.to_dict() if s.overhead else None for s in report.targets[0].sets}


def _wire(target: str, sets: str, out: Path, **options: Any) -> dict[str, Any]:
    cpus = plan()
    report = compare(
        targets=[target],
        sets=parse_sets(sets),
        baseline=False,
        ceiling=False,
        serve=ServeSettings(log_output=options.pop("log_output", None), cpus=cpus.server),
        load=LoadSettings(duration=1.0, warmup=0.0, cpus=cpus.load),
        out_dir=out,
        echo=lambda line: None,
        **options,
    )
    return {
        e.label: o.to_dict() if (o := e.overhead("cpu")) else None
        for e in report.sets
        if e.contender.stack
    } | {"_wall_s": report.wall_s}


def measure(
    target: str,
    *,
    budget_s: float = 150.0,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mwbench-wire-") as tmp:
        base = Path(tmp)
        echo(f"wire: {target} in-process, logs to a file and to null")
        found: dict[str, Any] = {
            "micro_file": _micro(target, f"file:{base / 'micro.log'}", 15),
            "micro_null": _micro(target, "null", 15),
        }
        echo(f"wire: {target} over the wire, -m each, tuned, precision 2 µs")
        found["wire"] = _wire(
            target, "each", base / "each", precision=Precision(2.0, budget_s), tune=True
        )
        for key, options in (
            ("wire_null", {"tune": True, "log_output": "null"}),
            ("wire_untuned", {"tune": False}),
            ("wire_untuned_null", {"tune": False, "log_output": "null"}),
        ):
            echo(f"wire: {target} none,dump {key}")
            found[key] = _wire(target, "none,dump", base / key, repeat=6, **options)
    return found


def run(
    targets: tuple[str, ...] = ("starlette", "flask"), echo: Callable[[str], None] = print
) -> dict[str, Any]:
    started = time.monotonic()
    data = {target: measure(target, echo=echo) for target in targets}
    return part_result(time.monotonic() - started, tables(data), notes(), data)


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for target, one in data.items():
        rows = [
            [
                name,
                fmt_est(one["micro_null"].get(name), 1, sign=True),
                fmt_est(one["micro_file"].get(name), 1, sign=True),
                fmt_est(one["wire"].get(name), 1, sign=True),
            ]
            for name in (*ORDER, "all")
        ]
        found.append(
            table(
                f"(e) {target}: overhead over none, µs per request (median ±95% half-width)",
                ["set", "in-process, null", "in-process, file", "wire, file, tuned"],
                rows,
            )
        )
        dump = [
            ["in-process, logs to null", fmt_est(one["micro_null"].get("dump"), 1, sign=True)],
            ["in-process, logs to a file", fmt_est(one["micro_file"].get("dump"), 1, sign=True)],
            ["wire, file, tuned", fmt_est(one["wire"].get("dump"), 1, sign=True)],
            ["wire, null, tuned", fmt_est(one["wire_null"].get("dump"), 1, sign=True)],
            ["wire, file, not tuned", fmt_est(one["wire_untuned"].get("dump"), 1, sign=True)],
            ["wire, null, not tuned", fmt_est(one["wire_untuned_null"].get("dump"), 1, sign=True)],
        ]
        found.append(table(f"(e) {target}: dump, one cause at a time", ["how", "µs"], dump))
    return found


def notes() -> list[str]:
    return [
        "in-process: harness micro, the request wrk sends (GET /healthz, Host only), 15 "
        "interleaved batches; wire: harness compare, 64 connections, 1 s rounds, CPU µs/request",
        "a gap that the sink or the tuning explains shows in the dump table: the sink is the "
        "difference between the file and null rows, the idle-halt wake-ups between tuned and not",
    ]
