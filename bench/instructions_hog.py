"""`--measure instructions` against the machine's speed (issue 33): the same compare with a CPU
hog on the server's core and without it, and twice in a row without it.

    .venv/bin/python bench/run.py --only hog              # part (k) of bench/results.json
    .venv/bin/python bench/instructions_hog.py            # plain, plain, hog, hog: ~3 minutes
    .venv/bin/python bench/instructions_hog.py --quick    # plain, plain, hog

Each run is `harness compare -t starlette -m none,request-id --measure instructions -r 2
--jobs 1`: one server at a time, on the server's CPU of harness.machine.cpus.plan (CPU 0 here,
wrk on CPU 1). The hog is a busy loop pinned (os.sched_setaffinity) to that CPU, at the same
priority: the server gets half its core, and a 600-request window lasts about twice as long.
With --jobs 2 (two servers at once, job k's server on CPU k), the hog runs on every server CPU.

For each set it prints the figure (instructions per request, the time part taken out), what the
figure was before issue 33 (the window's instructions over N, time part included), the time part's
share of the count, and how far a hog run and two plain runs are apart. Done when the hog and the
plain runs agree within 0.05% per set, and two plain runs within 0.1% per set and 1% on
request-id's overhead. Run on its own, it writes --out (default: a file beside results.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/instructions_hog.py` puts bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.report import fmt_num, fmt_pct, format_part, part_result, table  # noqa: E402
from harness.experiments.compare.result import CompareReport  # noqa: E402
from harness.experiments.compare.run import compare  # noqa: E402
from harness.load.settings import LoadSettings  # noqa: E402
from harness.machine.cpus import plan  # noqa: E402
from harness.measures.instructions import Parts  # noqa: E402
from harness.serving.settings import ServeSettings  # noqa: E402
from middleware.stack import parse_sets  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "instructions_hog.json"
TARGET, SETS, REPEAT = "starlette", "none,request-id", 2  # --repeat changes the rounds
MEASURE = "instructions"
HOG_AGREES_PCT = 0.05  # issue 33: with and without a hog, per set
RUNS_AGREE_PCT = 0.1  # two plain runs, per set
OVERHEAD_AGREES_PCT = 1.0  # two plain runs, on request-id's overhead


@contextmanager
def hog(cpus: Sequence[int] | None) -> Iterator[int | None]:
    """A busy loop pinned to `cpus` while the block runs; its pid (None: nothing to pin to)."""
    if not cpus:
        yield None
        return
    loop = f"import os\nos.sched_setaffinity(0, {set(cpus)!r})\nwhile True:\n    pass\n"
    busy = subprocess.Popen([sys.executable, "-c", loop], stdin=subprocess.DEVNULL)
    try:
        yield busy.pid
    finally:
        busy.kill()  # our own child, by its pid
        busy.wait()


def _set_figures(report: CompareReport) -> dict[str, Any]:
    """Per set: the figure, the old figure (time part included), its share and the window."""
    found = {}
    for entry in report.entries:
        parts = [p for r in entry.ok_rounds if (p := Parts.from_values(r.values, MEASURE))]
        cost, extra = entry.cost(MEASURE), entry.overhead(MEASURE)
        found[entry.label] = {
            "per_request": cost.median if cost else None,
            "overhead": extra.median if extra else None,
            "old": statistics.median(p.window / p.requests for p in parts) if parts else None,
            "time_share_pct": statistics.median(100 * p.time_share for p in parts)
            if parts
            else None,
            "window_s": [round(p.window_s, 3) for p in parts],
            "per_s": [round(p.per_second) for p in parts],
            "rounds": [r.value(MEASURE) for r in entry.ok_rounds],
        }
    return found


def _server_cpus(jobs: int) -> tuple[int, ...] | None:
    """The CPUs the compare's servers are pinned to: the plan's, or with several jobs every
    CPU (compare.run's slots put job k's server on the k-th)."""
    cpus = plan()
    if jobs == 1 or cpus.server is None:
        return cpus.server
    return tuple(sorted({*cpus.server, *(cpus.load or ())}))


def one_run(
    label: str, out: Path, *, hogged: bool, jobs: int, repeat: int, echo: Callable[[str], None]
) -> dict[str, Any]:
    cpus, hogged_cpus = plan(), _server_cpus(jobs)
    echo(f"instructions-hog: {label}" + (f" (hog on CPU {hogged_cpus})" if hogged else ""))
    with hog(hogged_cpus if hogged else None):
        started = time.monotonic()
        report = compare(
            targets=[TARGET],
            sets=parse_sets(SETS),
            measures=(MEASURE,),
            repeat=repeat,
            serve=ServeSettings(cpus=cpus.server),
            load=LoadSettings(cpus=cpus.load),
            out_dir=out,
            jobs=jobs,
            echo=lambda line: None,
        )
        wall_s = time.monotonic() - started
    rounds = sum(len(e.ok_rounds) for e in report.entries)
    native = report.settings.native_reference or []
    return {
        "label": label,
        "hog": hogged,
        "wall_s": round(wall_s, 1),
        "per_round_s": round(report.wall_s / max(rounds, 1), 2),
        "native_cpu_us": [round(n["cpu_us"]["median"], 2) for n in native],
        "sets": _set_figures(report),
    }


def _apart_pct(one: float | None, other: float | None) -> float | None:
    if one is None or other is None or not other:
        return None
    return 100 * (one - other) / other


def run(
    kinds: Sequence[bool],
    jobs: int = 1,
    repeat: int = REPEAT,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One compare per entry of `kinds` (True: with the hog), in that order."""
    started = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="mwbench-instructions-hog-") as tmp:
        for index, hogged in enumerate(kinds):
            label = f"{'hog' if hogged else 'plain'} {index + 1}"
            runs.append(
                one_run(
                    label,
                    Path(tmp) / f"run{index}",
                    hogged=hogged,
                    jobs=jobs,
                    repeat=repeat,
                    echo=echo,
                )
            )
    data = {"target": TARGET, "sets": SETS, "repeat": repeat, "jobs": jobs, "runs": runs}
    data["agreement"] = agreement(runs)
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def agreement(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """How far apart: each hog run from the first plain run, and the first two plain runs."""
    plain = [r for r in runs if not r["hog"]]
    found: dict[str, Any] = {"hog": [], "plain": None}
    if not plain:
        return found
    first = plain[0]

    def apart(other: dict[str, Any], key: str) -> dict[str, float | None]:
        return {
            label: _apart_pct(other["sets"][label][key], one[key])
            for label, one in first["sets"].items()
            if label in other["sets"]
        }

    for hogged in (r for r in runs if r["hog"]):
        found["hog"].append(
            {
                "run": hogged["label"],
                "per_request": apart(hogged, "per_request"),
                "old": apart(hogged, "old"),
            }
        )
    if len(plain) > 1:
        found["plain"] = {
            "run": plain[1]["label"],
            "per_request": apart(plain[1], "per_request"),
            "overhead": apart(plain[1], "overhead"),
        }
    return found


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    runs = data["runs"]
    labels = list(runs[0]["sets"])
    figures = table(
        f"{data['target']} -m {data['sets']} --measure instructions -r {data['repeat']} "
        f"--jobs {data['jobs']}: "
        "instructions per request (old: time part included)",
        [
            "run",
            *(f"{label}" for label in labels),
            *(f"{label} old" for label in labels),
            "time part",
            "window s",
            "s per round",
        ],
        [
            [
                r["label"],
                *(fmt_num(r["sets"][x]["per_request"], 0) for x in labels),
                *(fmt_num(r["sets"][x]["old"], 0) for x in labels),
                fmt_pct(r["sets"][labels[0]]["time_share_pct"], 2, sign=False),
                ", ".join(f"{s:.2f}" for s in r["sets"][labels[0]]["window_s"]),
                f"{r['per_round_s']:.1f}",
            ]
            for r in runs
        ],
    )
    agree = data["agreement"]
    rows = []
    for one in agree["hog"]:
        for label, apart in one["per_request"].items():
            rows.append(
                [
                    f"{one['run']} vs plain 1",
                    label,
                    fmt_pct(apart, 3),
                    fmt_pct(one["old"][label], 3),
                ]
            )
    if agree["plain"]:
        for label, apart in agree["plain"]["per_request"].items():
            over = agree["plain"]["overhead"].get(label)
            rows.append(
                [
                    f"{agree['plain']['run']} vs plain 1",
                    label,
                    fmt_pct(apart, 3),
                    "",
                    fmt_pct(over, 2),
                ]
            )
    apart_table = table(
        "How far apart (per set)",
        ["runs", "set", "instructions/req", "old (time part included)", "overhead"],
        rows,
    )
    return [figures, apart_table]


def _worst(values: dict[str, float | None]) -> float | None:
    found = [abs(v) for v in values.values() if v is not None]
    return max(found) if found else None


def notes(data: dict[str, Any]) -> list[str]:
    agree, lines = data["agreement"], []
    for one in agree["hog"]:
        worst = _worst(one["per_request"])
        held = worst is not None and worst <= HOG_AGREES_PCT
        lines.append(
            f"{one['run']}: at most {fmt_pct(worst, 3, sign=False)} from plain 1 per set "
            f"({'within' if held else 'NOT within'} {HOG_AGREES_PCT}%); the old figure "
            f"{fmt_pct(_worst(one['old']), 3, sign=False)}"
        )
    if agree["plain"]:
        worst = _worst(agree["plain"]["per_request"])
        over = _worst(agree["plain"]["overhead"])
        held = worst is not None and worst <= RUNS_AGREE_PCT
        held_over = over is not None and over <= OVERHEAD_AGREES_PCT
        lines.append(
            f"two plain runs: at most {fmt_pct(worst, 3, sign=False)} apart per set "
            f"({'within' if held else 'NOT within'} {RUNS_AGREE_PCT}%), overhead "
            f"{fmt_pct(over, 2, sign=False)} ({'within' if held_over else 'NOT within'} "
            f"{OVERHEAD_AGREES_PCT}%)"
        )
    spreads = [
        100 * (max(one["rounds"]) - min(one["rounds"])) / statistics.mean(one["rounds"])
        for r in data["runs"]
        for one in r["sets"].values()
        if len(one["rounds"]) > 1
    ]
    if spreads:
        lines.append(
            f"a round's own noise: the rounds of one set in one run are "
            f"{statistics.median(spreads):.3f}% apart at the median, {max(spreads):.3f}% at most"
        )
    native = [r["native_cpu_us"] for r in data["runs"] if r["native_cpu_us"]]
    if native:
        lines.append(
            "the VM's speed: raw-asgi at native speed, "
            + ", ".join(f"{v[0]:.1f}" for v in native)
            + " µs of CPU per request in the runs"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="plain, plain, hog")
    parser.add_argument("--jobs", type=int, default=1, help="contenders at once (compare's)")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="rounds of each compare")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    args = parser.parse_args(argv)
    kinds = (False, False, True) if args.quick else (False, False, True, True)
    part = run(kinds, jobs=args.jobs, repeat=args.repeat)
    args.out.write_text(json.dumps(part, indent=2) + "\n")
    print(format_part("instructions-hog", part))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
