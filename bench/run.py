"""`make bench`: the project's own speed and precision. Prints the tables and writes
bench/results.json (the parts run now replace their previous versions; the others are kept).

    .venv/bin/python bench/run.py                       # every part, several minutes
    .venv/bin/python bench/run.py --only micro,references
    .venv/bin/python bench/run.py --quick               # shorter settings, for a look
    .venv/bin/python bench/run.py --show                # reprint bench/results.json

Parts:
  micro       (a) every middleware on every framework, in-process (harness.experiments.micro)
  references  (b) our middlewares against the reference libraries, in the same run
  precision   (c) the same `harness compare` twice: how far the two agree
  agreement   (d) harness sweep vs a plain `taskset -c 1 wrk -t1 -c64 -d5s`, and the ceiling
  wire        (e) each middleware in-process against over the wire, and the causes of a gap
  options     (f) precision per minute for every framework, before and after; Flask's options
  instructions (g) --measure instructions: runs' agreement, what varies, time per set, in-process
  ci          (j) --measure instructions in CI: --jobs 2 against one at a time, shards merged
  hog         (k) --measure instructions with a CPU hog on the server's core and without
  latency     (h) --measure latency: k6's limits here, a stall wrk hides, FastAPI's BaseHTTP layer
  memory      (i) allocations per request in-process; --measure memory's false-positive rate
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from bench.report import PARTS, document, foreign_load, format_part  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results.json"


def _parts(value: str) -> list[str]:
    names = [p.strip() for p in value.split(",") if p.strip()]
    for name in names:
        if name not in PARTS:
            raise argparse.ArgumentTypeError(f"unknown part {name!r}; valid: {', '.join(PARTS)}")
    return names


def busy_seconds() -> float:
    """CPU time spent busy, all CPUs together, since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal, minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """This process's CPU time and its children's: those reaped (servers and wrk, once waited
    for), and the workers of servers killed at once, which init reaps."""
    from harness.serving.servers import killed_cpu_seconds

    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + killed_cpu_seconds()


# Each part: its module in bench/ and its run()'s arguments, in full and with --quick.
RUNS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "micro": ("micro_all", {"repeat": 15, "batch_s": 0.04}, {"repeat": 6, "batch_s": 0.02}),
    "references": ("references", {"repeat": 15, "batch_s": 0.04}, {"repeat": 6, "batch_s": 0.02}),
    "precision": ("precision", {"repeat": 3, "duration": 3.0}, {"repeat": 2, "duration": 2.0}),
    "agreement": (
        "agreement",
        {},
        {"targets": ("ceiling", "starlette"), "rounds": 2, "duration": 3},
    ),
    "wire": ("wire", {"targets": ("starlette", "flask")}, {"targets": ("starlette",)}),
    "options": ("options", {"rounds": 5}, {"rounds": 3}),
    "instructions": ("instructions", {"runs": 5}, {"runs": 2}),
    "ci": ("instructions_ci", {}, {}),
    "hog": ("instructions_hog", {"kinds": (False, False, True, True)}, {"kinds": (False, True)}),
    "latency": ("latency", {"rounds": 5}, {"rounds": 2}),
    "memory": ("memory", {"runs": 3}, {"runs": 1}),
}


def run_part(name: str, quick: bool) -> dict[str, Any]:
    module, full, short = RUNS[name]
    found: dict[str, Any] = importlib.import_module(f"bench.{module}").run(
        **(short if quick else full)
    )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
    )
    parser.add_argument("--only", type=_parts, default=list(PARTS), help="comma list of parts")
    parser.add_argument("--skip", type=_parts, default=[], help="comma list of parts to skip")
    parser.add_argument("--quick", action="store_true", help="shorter settings, for a look")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    parser.add_argument("--show", action="store_true", help="only reprint the results JSON")
    args = parser.parse_args(argv)

    previous: dict[str, Any] | None = None
    if args.out.exists():
        previous = json.loads(args.out.read_text())
    if args.show:
        if previous is None:
            parser.error(f"{args.out} does not exist yet")
        for name, part in previous["parts"].items():
            print(format_part(name, part) + "\n")
        return 0

    from harness.experiments.micro import micro_environment as environment

    chosen = [p for p in args.only if p not in args.skip]
    started = time.monotonic()
    done: dict[str, dict[str, Any]] = {}
    for name in chosen:
        print(f"-- {name} --", flush=True)
        busy, own, wall = busy_seconds(), own_seconds(), time.monotonic()
        part = run_part(name, args.quick)
        part["quick"] = args.quick
        load = foreign_load(busy_seconds() - busy, own_seconds() - own, time.monotonic() - wall)
        part["foreign_load_cpus"] = None if load is None else round(load, 2)
        done[name] = part
        # Written after every part: an interrupted run keeps what it finished.
        result = document(done, environment(), previous)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    for name, part in done.items():
        print(format_part(name, part) + "\n")
    print(f"wrote {args.out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
