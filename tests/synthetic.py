"""Entries with rounds made up to give chosen estimates, for the tests of what is computed from
rounds (precision, the gate, findings, charts) without measuring anything."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.experiments.compare.contenders import Entry, Round
from harness.experiments.compare.result import CompareReport, CompareSettings
from harness.stats.intervals import t_critical_95
from targets.table import TARGETS

BASE = 100.0  # what a raw baseline costs in every round


def spread(center: float, half: float, n: int) -> list[float]:
    """`n` values whose median is `center` and whose 95% Student-t half-width is `half`."""
    if n < 2 or half == 0:
        return [center] * n
    # center ± k alternately (and center once more for an odd n): the median stays `center`.
    s_over_k = math.sqrt(n / (n - 1)) if n % 2 == 0 else 1.0
    k = half * math.sqrt(n) / (t_critical_95(n - 1) * s_over_k)
    return [center + k, center - k] * (n // 2) + ([center] if n % 2 else [])


def set_overheads(
    entries: Sequence[Entry], diffs: dict[str, Sequence[float]], measure: str = "cpu"
) -> None:
    """Rounds for every entry such that each one's overhead over its reference, round by round,
    is `diffs[label]` (0 for an entry not named; a baseline costs BASE every round), in
    `measure`; called again for another measure, it adds that one to the same rounds."""
    n = max((len(d) for d in diffs.values()), default=1)
    values: dict[int, list[float]] = {}

    def of(entry: Entry) -> list[float]:
        if id(entry) not in values:
            mine = list(diffs.get(entry.label, [0.0] * n))
            below = of(entry.reference) if entry.reference is not None else [BASE] * len(mine)
            values[id(entry)] = [b + d for b, d in zip(below, mine, strict=False)]
        return values[id(entry)]

    for entry in entries:
        mine = of(entry)
        if len(entry.rounds) != len(mine):  # else another measure's rounds: add this one's
            entry.rounds = [
                Round(r, "ok", peak_qps=1e6 / v if v > 0 else math.nan)
                for r, v in enumerate(mine, start=1)
            ]
        for one, v in zip(entry.rounds, mine, strict=True):
            one.values[measure] = v


def report_of(
    entries: list[Entry], *, target: str = "starlette", out_dir: Path = Path(), **fields: Any
) -> CompareReport:
    """A report of made-up entries of `target` against its raw baseline, as measured with
    default settings; `fields` set the rest (measures, settings, baselines)."""
    fields.setdefault("baselines", [TARGETS[target].baseline])
    fields.setdefault("settings", CompareSettings())
    return CompareReport(targets=[target], entries=entries, out_dir=out_dir, **fields)
