"""`harness merge`: one compare from its shards (`compare --shard K/N`), measured apart, on a
CI matrix's machines.

A shard measures its share of the sets with what each is measured against, so every overhead
is paired within one shard. A contender that several shards measured (a reference, the raw
baseline) keeps all their rounds; to keep each pairing within its shard, shard K's round r
becomes round (K - 1) * ROUNDS_APART + r of the merged report. Shards measured differently
(another measure, request, window, versions) are refused in one line: their figures do not add.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.experiments.compare.contenders import Entry, Round, link
from harness.experiments.compare.result import CompareReport

ROUNDS_APART = 1000  # more rounds than a shard runs (rounds.MAX_ROUNDS is 60)
# What must be the same in every shard for their figures to be one compare's.
SAME_SETTINGS = (
    "levels",
    "duration_s",
    "warmup_s",
    "timeout_s",
    "requests",
    "paced",
    "request",
    "workers",
    "worker_class",
    "threads",
    "servers",
    "variants",
    "passed_env",
    "rates",
)
# Versions that change what a request costs; the date, the load average and the CPUs' ids
# may differ from one CI machine to the next.
SAME_ENVIRONMENT = ("python", "implementation", "packages", "wrk_version")


def merge(reports: Sequence[CompareReport], out_dir: Path | str) -> CompareReport:
    """The compare the shards `reports` are parts of. UsageError when they are not the shards
    of one compare, measured alike."""
    if not reports:
        raise UsageError("no compare.json to merge")
    shards = [_shard(r) for r in reports]
    count = shards[0]["count"]
    indexes = sorted(s["index"] for s in shards)
    if any(s["count"] != count for s in shards) or len(set(indexes)) < len(indexes):
        said = ", ".join(f"{s['index']}/{s['count']}" for s in shards)
        raise UsageError(f"not the shards of one compare: {said}")
    missing = sorted(set(range(1, count + 1)) - set(indexes))
    if missing:
        raise UsageError(f"shard(s) {', '.join(f'{k}/{count}' for k in missing)} not given")
    first = reports[0]
    for other in reports[1:]:
        _check_alike(first, other)
    entries = _entries(reports, shards)
    settings = dataclasses.replace(
        first.settings,
        shard=None,
        merged_from=[str(r.json_path) for r in reports],
        rounds=max(r.settings.rounds or 0 for r in reports),
    )
    return dataclasses.replace(
        first,
        entries=entries,
        settings=settings,
        out_dir=Path(out_dir),
        ceiling_qps=_least(r.ceiling_qps for r in reports),
        interrupted=any(r.interrupted for r in reports),
        wall_s=sum(r.wall_s for r in reports),
        files=[],
        source=None,
        targets=list(dict.fromkeys(t for r in reports for t in r.targets)),
        baselines=list(dict.fromkeys(b for r in reports for b in r.baselines)),
    )


def _shard(report: CompareReport) -> dict[str, Any]:
    found = report.settings.shard
    if not found:
        raise UsageError(f"{report.json_path} is not a shard: measure it with --shard K/N")
    return dict(found)


def _check_alike(a: CompareReport, b: CompareReport) -> None:
    def refuse(what: str, mine: Any, theirs: Any) -> None:
        raise UsageError(
            f"{b.json_path} was measured with another {what} than {a.json_path} "
            f"({_short(theirs)} against {_short(mine)}): shards must be measured alike"
        )

    if a.measures != b.measures:
        refuse("measure", ",".join(a.measures), ",".join(b.measures))
    for key in SAME_SETTINGS:
        mine, theirs = getattr(a.settings, key), getattr(b.settings, key)
        if mine != theirs:
            refuse(key.replace("_s", "").replace("_", " "), mine, theirs)
    if _shard(a)["order"] != _shard(b)["order"]:
        refuse("set of contenders", len(_shard(a)["order"]), len(_shard(b)["order"]))
    ours, theirs = a.environment, b.environment
    for key in SAME_ENVIRONMENT:
        if ours.get(key) != theirs.get(key):
            mine, other = ours.get(key), theirs.get(key)
            if isinstance(mine, dict) and isinstance(other, dict):
                names = sorted(k for k in {*mine, *other} if mine.get(k) != other.get(k))
                name = names[0]
                refuse(f"version of {name}", mine.get(name, "none"), other.get(name, "none"))
            refuse(key.replace("_", " "), mine, other)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _entries(reports: Sequence[CompareReport], shards: list[dict[str, Any]]) -> list[Entry]:
    """Every contender once, with the rounds of every shard that measured it, renumbered so
    that a round pairs only with its own shard's; in the whole compare's order."""
    merged: dict[str, Entry] = {}
    for report, shard in zip(reports, shards, strict=True):
        offset = (shard["index"] - 1) * ROUNDS_APART
        for entry in report.entries:
            rounds = [dataclasses.replace(r, repeat=r.repeat + offset) for r in entry.rounds]
            found = merged.get(entry.label)
            if found is None:
                merged[entry.label] = dataclasses.replace(entry, rounds=rounds, reference=None)
            else:
                found.rounds = sorted([*found.rounds, *rounds], key=_repeat)
                found.invalid = found.invalid or entry.invalid
    order = {label: i for i, label in enumerate(shards[0]["order"])}
    return link(sorted(merged.values(), key=lambda e: order.get(e.label, math.inf)))


def _repeat(one: Round) -> int:
    return one.repeat


def _least(values: Any) -> float | None:
    found = [v for v in values if v]
    return min(found) if found else None
