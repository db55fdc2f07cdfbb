"""Part (d): agreement with the original method. For one pinned server at a time, the QPS the
harness's sweep (what `harness run` runs) measures against a plain command line,

    taskset -c 1 wrk -t1 -c64 -d5s URL

parsed here with a regex of its own (not the harness's parser), alternating A B B A ... on the same
server after one discarded warm-up. The server is pinned to the other CPU, as the harness pins it.
`ceiling` gives the load generator's limit with the same settings; a target within 20% of it
measures wrk, not itself.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.report import fmt_num, fmt_pct, part_result, table
from harness.experiments.compare.contenders import GENERATOR_BOUND
from harness.experiments.sweep.run import sweep
from harness.load.settings import LoadSettings
from harness.load.wrk import resolve_wrk
from harness.machine.cpus import CpuPlan, plan
from harness.serving.servers import running
from harness.serving.settings import ServeSettings
from harness.stats.intervals import estimate

_QPS = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
DEFAULT_TARGETS = ("ceiling", "raw-asgi", "starlette", "aiohttp")


def plain_command(url: str, cpus: str, connections: int, duration: int, wrk: str) -> list[str]:
    return ["taskset", "-c", cpus, wrk, "-t1", f"-c{connections}", f"-d{duration}s", url]


def parse_plain_qps(stdout: str) -> float:
    found = _QPS.search(stdout)
    if found is None:
        raise RuntimeError(f"no Requests/sec in wrk's output: {stdout[-200:]!r}")
    return float(found.group(1))


def run_plain(command: list[str], timeout: float) -> float:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    return parse_plain_qps(done.stdout)


def measure_target(
    target: str,
    *,
    rounds: int,
    duration: int,
    connections: int,
    cpus: CpuPlan,  # pinned: server and wrk apart
    wrk: str,
    out_dir: Path,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    server_cpus, load_cpus = cpus.server or (), cpus.load or ()
    cpulist = ",".join(map(str, load_cpus))
    harness_qps: list[float] = []
    plain_qps: list[float] = []
    with running(target, ServeSettings(cpus=server_cpus, log_output="null")) as server:
        url = f"{server.url}/healthz"
        command = plain_command(url, cpulist, connections, duration, wrk)
        run_plain(plain_command(url, cpulist, connections, 2, wrk), timeout=30)  # warm-up
        for r in range(rounds):
            # A B, then B A: neither method always goes first.
            order = ("harness", "plain") if r % 2 == 0 else ("plain", "harness")
            for method in order:
                if method == "plain":
                    plain_qps.append(run_plain(command, timeout=duration + 30))
                else:
                    swept = sweep(
                        url=url,
                        name=f"{target}_r{r + 1}",
                        out_dir=out_dir,
                        load=LoadSettings(
                            levels=(connections,),
                            duration=float(duration),
                            threads=1,
                            warmup=0.0,
                            wrk=wrk,
                            cpus=load_cpus,
                        ),
                        progress=False,
                    )
                    if swept.peak is None:
                        raise RuntimeError(f"harness sweep of {target} measured nothing")
                    harness_qps.append(swept.peak.qps)
            echo(
                f"agreement: {target} round {r + 1}: harness {harness_qps[-1]:,.0f}, "
                f"plain wrk {plain_qps[-1]:,.0f} req/s"
            )
    diffs = [100 * (h - p) / p for h, p in zip(harness_qps, plain_qps, strict=True)]
    return {
        "target": target,
        "plain_command": " ".join([*command[:-1], "URL"]),
        "harness_qps": harness_qps,
        "plain_qps": plain_qps,
        "harness_median": statistics.median(harness_qps),
        "plain_median": statistics.median(plain_qps),
        "diff_pct": estimate(diffs).to_dict(),
        "spread_pct": _spread(harness_qps + plain_qps),
    }


def _spread(values: Sequence[float]) -> float:
    """Run-to-run spread of one server's QPS, all runs of both methods: (max − min) / median."""
    return 100 * (max(values) - min(values)) / statistics.median(values)


def within_noise(row: dict[str, Any]) -> bool:
    """The methods agree when the paired difference's interval includes 0, or the median
    difference is smaller than the run-to-run spread."""
    diff = row["diff_pct"]
    low, high = diff.get("low"), diff.get("high")
    if low is not None and high is not None and low <= 0 <= high:
        return True
    return abs(diff["median"]) <= row["spread_pct"]


def run(
    *,
    targets: Sequence[str] = DEFAULT_TARGETS,
    rounds: int = 3,
    duration: int = 5,
    connections: int = 64,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    started = time.monotonic()
    cpus = plan(True)
    if cpus.server is None or cpus.load is None:
        raise RuntimeError("agreement needs two CPUs and taskset: server and wrk pinned apart")
    wrk = resolve_wrk(None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mwbench-agreement-") as tmp:
        for target in targets:
            rows.append(
                measure_target(
                    target,
                    rounds=rounds,
                    duration=duration,
                    connections=connections,
                    cpus=cpus,
                    wrk=wrk,
                    out_dir=Path(tmp),
                    echo=echo,
                )
            )
    ceiling = next((r["plain_median"] for r in rows if r["target"] == "ceiling"), None)
    for row in rows:
        row["agree"] = within_noise(row)
        row["pct_of_ceiling"] = 100 * row["plain_median"] / ceiling if ceiling else None
        row["wrk_bound"] = (
            row["target"] != "ceiling"
            and row["pct_of_ceiling"] is not None
            and row["pct_of_ceiling"] >= 100 * GENERATOR_BOUND
        )
    data = {
        "server_cpus": list(cpus.server),
        "wrk_cpus": list(cpus.load),
        "rounds": rounds,
        "duration_s": duration,
        "connections": connections,
        "ceiling_qps": ceiling,
        "rows": rows,
    }
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in data["rows"]:
        diff = r["diff_pct"]
        hw = (diff["high"] - diff["low"]) / 2 if diff.get("low") is not None else None
        rows.append(
            [
                r["target"],
                fmt_num(r["harness_median"], 0),
                fmt_num(r["plain_median"], 0),
                fmt_pct(diff["median"]) + (f" ±{hw:.1f}" if hw is not None else ""),
                fmt_pct(r["spread_pct"], sign=False),
                "yes" if r["agree"] else "NO",
                fmt_pct(r["pct_of_ceiling"], 0, sign=False)
                + (" wrk-bound" if r["wrk_bound"] else ""),
            ]
        )
    return [
        table(
            f"(d) harness sweep vs plain wrk, same pinned server (server CPU "
            f"{data['server_cpus']}, wrk CPU {data['wrk_cpus']}), median of {data['rounds']} "
            f"runs of {data['duration_s']} s at c={data['connections']}",
            [
                "target",
                "harness req/s",
                "plain wrk req/s",
                "Δ (paired)",
                "spread",
                "agree",
                "of ceiling",
            ],
            rows,
        )
    ]


def notes(data: dict[str, Any]) -> list[str]:
    lines = [
        "plain: " + (data["rows"][0]["plain_command"] if data["rows"] else "—"),
        f"harness: sweep(levels=({data['connections']},), threads=1, "
        f"duration={data['duration_s']}s, cpus=wrk's), the code under `harness run`, with its "
        "own parser and --latency on",
        "agree: the paired difference's 95% interval includes 0, or it is below the run-to-run "
        "spread ((max − min) / median of all runs of that server)",
    ]
    if data["ceiling_qps"]:
        lines.append(
            f"generator limit (ceiling, plain wrk): {data['ceiling_qps']:,.0f} req/s; "
            f"a target at ≥{100 * GENERATOR_BOUND:.0f}% of it is wrk-bound"
        )
    return lines
