"""`micro` across variants: each variant's environment variables need a process of their own.

An app reads its configuration when it is imported (Sentry's `init()`, a tracer provider), and
micro times apps in-process: a variable set after the import changes nothing. So each variant
runs micro in a child Python with its variables, the same options pickled to it, and its report
comes back as micro's JSON. The variants are compared set by set on the child's repeats (Welch's
interval: two processes' repeats cannot be paired).

    python -m harness.experiments.micro.variant_children OPTIONS.pickle REPORT.json
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.experiments.micro.driver import MicroError
from harness.experiments.micro.plan import MicroOptions
from harness.machine.lifetime import run_to_its_end
from harness.serving.variants import Variant
from harness.stats.intervals import Estimate, estimate, welch

BOUND_S = 1800  # a child that runs longer than this is killed: every load loop is bounded


@dataclass(frozen=True)
class VariantCost:
    """One set of one target in one variant, and its change from the first variant."""

    target: str
    set_name: str
    variant: str
    cost: Estimate
    change: Estimate | None  # None for the first variant itself


def micro_variants(
    variants: Sequence[Variant], options: MicroOptions, echo: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """micro(options) once per variant, each in a child process with the variant's
    variables: each child's report (micro's JSON) by variant name. MicroError naming the
    variant whose run failed."""
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mwbench-micro-") as tmp:
        asked = Path(tmp) / "options.pickle"
        asked.write_bytes(pickle.dumps(options))
        for variant in variants:
            echo(f"micro: variant {variant.name} ({variant.describe()}), in its own process")
            out = Path(tmp) / f"{variant.name}.json"
            command = [sys.executable, "-m", __name__, str(asked), str(out)]
            env = {**os.environ, **dict(variant.env)}
            try:
                done = run_to_its_end(command, env=env, timeout=BOUND_S)
            except subprocess.TimeoutExpired:
                raise MicroError(f"variant {variant.name}: micro ran over {BOUND_S}s") from None
            if done.returncode != 0 or not out.exists():
                said = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise MicroError(f"variant {variant.name} ({variant.describe()}): {said}")
            reports[variant.name] = json.loads(out.read_text())
    return reports


def variant_costs(reports: dict[str, dict[str, Any]]) -> list[VariantCost]:
    """Every set of every target in every variant, each against the first variant's."""
    if not reports:
        return []
    first, rows = next(iter(reports)), []
    by_key = {
        (name, one["target"], s["name"]): s["values_us"]
        for name, report in reports.items()
        for one in report["targets"]
        for s in one["sets"]
    }
    for name, target, set_name in by_key:
        values = by_key[(name, target, set_name)]
        reference = by_key.get((first, target, set_name)) if name != first else None
        change = welch(values, reference) if reference is not None else None
        rows.append(VariantCost(target, set_name, name, estimate(values), change))
    rows.sort(key=lambda r: (r.target, r.set_name))  # each set's variants side by side
    return rows


def _child(options_path: str, out_path: str) -> int:
    from harness.experiments.micro.run import micro

    options = pickle.loads(Path(options_path).read_bytes())
    try:
        report = micro(options)
    except MicroError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 1
    Path(out_path).write_text(json.dumps(report.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:3]))
