"""(h) `--measure latency`: the generator's limits here, the stall that a closed loop hides, and
the FastAPI sample app's BaseHTTPMiddleware layer against its pure ASGI one at half the slowest
set's closed-model peak.

- generator: k6 against the ceiling server, asked 20,000 req/s (what it sends at most) and at
  1,000 / 2,000 / 4,000 req/s (its own latency floor and CPU);
- stall: tests/fixtures/apps/stall.py (20 ms of blocked event loop every 100 requests) with k6
  at 1,000 req/s against wrk on 1 and on 16 connections;
- fastapi: `harness compare --app tests/apps/shop_fastapi.py:app --path /items/1
  -m none,ServerTiming,PoweredBy --measure latency -r ROUNDS` (rate: 50% of the slowest peak),
  and PoweredBy − ServerTiming paired round by round.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import fmt_num, part_result, table
from harness.experiments.compare.run import compare
from harness.experiments.sweep.run import sweep
from harness.load.k6 import run_k6
from harness.load.request import Request
from harness.load.settings import LoadSettings
from harness.machine.cpus import plan
from harness.serving.apps import describe_app, target_for
from harness.serving.servers import running
from harness.serving.settings import ServeSettings
from harness.serving.userapp.spec import AppSpec
from harness.stats.intervals import estimate, paired_differences

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5
FLOOR_RATES = (1000, 2000, 4000, 6000)
CONNECTIONS = (1, 16, 64)  # wrk's, against the stall


def _generator() -> dict[str, Any]:
    cpus = plan()
    serve = ServeSettings(cpus=cpus.server, log_output="null")
    with running("ceiling", serve) as server:
        url = f"{server.url}/healthz"
        limit = run_k6(url, rate=20_000, duration=3, cpus=cpus.load)
        floors = [run_k6(url, rate=r, duration=5, cpus=cpus.load).to_dict() for r in FLOOR_RATES]
    return {"limit": limit.achieved, "limit_k6_busy": limit.k6_busy, "floors": floors}


def _stall(base: Path) -> dict[str, Any]:
    cpus = plan()
    info = describe_app(AppSpec("tests/fixtures/apps/stall.py:app", False, str(ROOT)))
    serve = ServeSettings(cpus=cpus.server, log_output="null")
    found: dict[str, Any] = {}
    with running(target_for(info), serve, stack=info.layer_names) as server:
        url = f"{server.url}/healthz"
        run_k6(url, rate=1000, duration=1, cpus=cpus.load)
        found["k6"] = run_k6(url, rate=1000, duration=5, cpus=cpus.load).to_dict()
        for c in CONNECTIONS:
            load = LoadSettings(levels=(c,), duration=5, warmup=1, cpus=cpus.load)
            swept = sweep(url=url, name=f"c{c}", out_dir=base, progress=False, load=load)
            peak = swept.peak
            found[f"wrk_c{c}"] = peak.to_dict() if peak else None
    return found


def _fastapi(base: Path, rounds: int) -> dict[str, Any]:
    cpus = plan()
    info = describe_app(AppSpec("tests/apps/shop_fastapi.py:app", False, str(ROOT)))
    report = compare(
        targets=[target_for(info)], sets=[(), ("ServerTiming",), ("PoweredBy",)],
        measures=("latency",), repeat=rounds, serve=ServeSettings(cpus=cpus.server),
        load=LoadSettings(cpus=cpus.load, duration=5, request=Request(path="/items/1")),
        out_dir=base / "fastapi", echo=lambda line: None,
    )  # fmt: skip
    p99 = report.measures[0]
    sets: dict[str, dict[str, Any]] = {}
    for entry in report.entries:
        cost, over = entry.cost(p99), entry.overhead(p99)
        p50 = entry.cost(p99.replace("p99", "p50"))
        sets[entry.label] = {
            "p99": cost.to_dict() if cost else None, "p50": p50.to_dict() if p50 else None,
            "overhead": over.to_dict() if over else None, "values": entry.values(p99),
        }  # fmt: skip
    pure, based = sets.get("ServerTiming"), sets.get("PoweredBy")
    between = None
    if pure and based:
        pure_values, based_values = pure["values"], based["values"]
        if len(pure_values) == len(based_values) > 1:
            between = estimate(paired_differences(based_values, pure_values)).to_dict()
    return {
        "rate": report.settings.rates[0] if report.settings.rates else None,
        "closed_peaks": report.settings.closed_peaks,
        "generator": report.settings.generator, "sets": sets, "basehttp_minus_pure": between,
        "wall_s": round(report.wall_s, 1),
    }  # fmt: skip


def run(rounds: int = ROUNDS, echo: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.monotonic()
    data: dict[str, Any] = {"rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="mwbench-latency-") as tmp:
        echo("latency: the generator against the ceiling")
        data["generator"] = _generator()
        echo("latency: the stall app, k6 against wrk")
        data["stall"] = _stall(Path(tmp))
        echo(f"latency: the FastAPI sample app, {rounds} rounds")
        data["fastapi"] = _fastapi(Path(tmp), rounds)
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def _ms(value: float | None) -> str:
    return fmt_num(value, 2) if value is not None else "—"


def _est(one: dict[str, Any] | None) -> str:
    if not one or one.get("median") is None:
        return "—"
    text = f"{one['median']:.2f}"
    if one.get("low") is not None:
        text += f" [{one['low']:.2f}, {one['high']:.2f}]"
    return text


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    gen = data["generator"]
    out = [table(
        f"k6 against the ceiling (one core): at most {gen['limit']:,.0f} req/s",
        ["rate", "achieved", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "k6 CPU"],
        [[f"{f['rate']:,.0f}", f"{f['achieved']:,.0f}", _ms(f["p50"]), _ms(f["p90"]),
          _ms(f["p99"]), _ms(f["p999"]), f"{100 * (f['k6_busy'] or 0):.0f}%"]
         for f in gen["floors"]],
    )]  # fmt: skip
    stall = data["stall"]
    k6 = stall["k6"]
    rows = [["k6, 1,000 req/s (open)", _ms(k6["p50"]), _ms(k6["p90"]), _ms(k6["p99"]),
             f"{k6['achieved']:,.0f}"]]  # fmt: skip
    for c in CONNECTIONS:
        w = stall.get(f"wrk_c{c}")
        if w:
            times = [_ms(w.get(f"p{p}_ms")) for p in (50, 90, 99)]
            rows.append([f"wrk, {c} connection(s) (closed)", *times, f"{w['qps']:,.0f}"])
    out.append(table("20 ms stall every 100 requests", ["generator", "p50 ms", "p90 ms",
                     "p99 ms", "req/s"], rows))  # fmt: skip
    fa = data["fastapi"]
    out.append(table(
        f"FastAPI sample app at {fa['rate']:,.0f} req/s (50% of the slowest peak), "
        f"{data['rounds']} rounds: median [95% interval]",
        ["set", "p50 ms", "p99 ms", "Δp99 vs none ms"],
        [[label, _est(one["p50"]), _est(one["p99"]), _est(one["overhead"])]
         for label, one in fa["sets"].items()],
    ))  # fmt: skip
    return out


def notes(data: dict[str, Any]) -> list[str]:
    fa = data["fastapi"]
    peaks = ", ".join(f"{k} {v:,.0f}" for k, v in fa["closed_peaks"].items())
    between = fa.get("basehttp_minus_pure")
    lines = [f"FastAPI closed-model peaks (req/s): {peaks}; the compare took {fa['wall_s']:g} s"]
    if between:
        lines.append(f"PoweredBy (BaseHTTPMiddleware) − ServerTiming (pure ASGI), p99, paired: "
                     f"{_est(between)} ms")  # fmt: skip
    stall = data["stall"].get("wrk_c1")
    if stall:
        share = min(1.0, stall["qps"] / 100 * 0.020)
        lines.append(f"wrk on 1 connection: the server was stalled {100 * share:.0f}% of its run")
    return lines
