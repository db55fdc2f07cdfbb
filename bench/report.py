"""Pure helpers of the bench: figures as text, plain-text tables, the results.json document.

Every part of the bench returns a dict with `tables` (each `{"title", "columns", "rows"}`, rows
of already formatted strings), `notes` (lines) and `data` (the numbers). run.py prints the tables
and notes and merges the part into bench/results.json, so the file alone can reprint the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

SCHEMA = "mwbench-bench/1"
PARTS = (
    "micro",
    "references",
    "precision",
    "agreement",
    "wire",
    "options",
    "instructions",
    "ci",
    "hog",
    "latency",
    "memory",
)


def part_result(
    wall_s: float, tables: list[dict[str, Any]], notes: list[str], data: dict[str, Any]
) -> dict[str, Any]:
    """What a part returns (the module docstring says what each key holds)."""
    return {"wall_s": round(wall_s, 1), "tables": tables, "notes": notes, "data": data}


def fmt_num(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.{digits}f}"


def half_width(est: Mapping[str, Any] | None) -> float | None:
    """An Estimate.to_dict()'s half-width, or None when it has no interval."""
    if not est:
        return None
    low, high = est.get("low"), est.get("high")
    if low is None or high is None:
        return None
    return (float(high) - float(low)) / 2


def fmt_est(est: Mapping[str, Any] | None, digits: int = 3, sign: bool = False) -> str:
    """`median ±half-width` of an Estimate.to_dict(); `—` when there is none."""
    if not est or est.get("median") is None:
        return "—"
    median = float(est["median"])
    text = f"{median:+,.{digits}f}" if sign else f"{median:,.{digits}f}"
    hw = half_width(est)
    return text if hw is None else f"{text} ±{hw:,.{digits}f}"


def fmt_pct(value: float | None, digits: int = 1, sign: bool = True) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+.{digits}f}%" if sign else f"{value:.{digits}f}%"


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A table for the report: every cell as text; rows shorter than the columns are padded."""
    width = len(columns)
    clean = []
    for row in rows:
        cells = ["" if c is None else str(c) for c in row]
        if len(cells) > width:
            raise ValueError(f"row has {len(cells)} cells, table {title!r} has {width} columns")
        clean.append(cells + [""] * (width - len(cells)))
    return {"title": title, "columns": list(columns), "rows": clean}


def _is_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "").replace("±", " ").split()
    if not stripped:
        return False
    try:
        float(stripped[0].lstrip("+"))
    except ValueError:
        return False
    return True


def format_table(spec: Mapping[str, Any]) -> str:
    """A plain-text table: a title line, a header, a rule, the rows. Columns whose cells are all
    numbers (or empty) are right-aligned, the others left-aligned."""
    columns = [str(c) for c in spec["columns"]]
    rows = [[str(c) for c in row] for row in spec["rows"]]
    widths = [len(c) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        all(_is_numeric(row[i]) or row[i] in ("", "—") for row in rows) and any(rows)
        for i in range(len(columns))
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out = [str(spec.get("title", "")), line(columns), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def foreign_load(busy_s: float, own_s: float, wall_s: float) -> float | None:
    """CPUs kept busy by other processes: the system's busy CPU time (all CPUs, /proc/stat)
    minus this process's and its reaped children's, per second of wall time."""
    if wall_s <= 0:
        return None
    return max(0.0, (busy_s - own_s) / wall_s)


def format_part(name: str, part: Mapping[str, Any]) -> str:
    """A part's tables and notes, as printed by run.py."""
    load = part.get("foreign_load_cpus")
    busy = "" if load is None else f"; other processes kept {load:.2f} CPUs busy meanwhile"
    chunks = [f"== {name} ({part.get('wall_s', 0):.0f} s{busy}) =="]
    for spec in part.get("tables", []):
        chunks.append(format_table(spec))
    notes = part.get("notes", [])
    if notes:
        chunks.append("\n".join(f"- {n}" for n in notes))
    return "\n\n".join(chunks)


def verdict(diff: Mapping[str, Any] | None, what: str = "ours") -> str:
    """Ours minus a reference, paired (an Estimate.to_dict(), µs): faster, within noise, slower."""
    if not diff or diff.get("median") is None:
        return "—"
    median = float(diff["median"])
    low, high = diff.get("low"), diff.get("high")
    if low is not None and high is not None:
        if float(high) < 0:
            return f"{what} faster by {-median:,.3f} µs"
        if float(low) > 0:
            return f"{what.upper()} SLOWER by {median:,.3f} µs"
        return f"same within noise ({median:+,.3f} µs, interval includes 0)"
    return f"{median:+,.3f} µs (one repeat, no interval)"


def document(
    parts: Mapping[str, Mapping[str, Any]],
    environment: Mapping[str, Any],
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """bench/results.json: the parts just run replace their previous versions; the others are
    kept, each with the date it was measured."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    old_parts: dict[str, Any] = {}
    if previous and previous.get("schema") == SCHEMA:
        old_parts = dict(previous.get("parts", {}))
    merged = dict(old_parts)
    for name, part in parts.items():
        if name not in PARTS:
            raise ValueError(f"unknown bench part {name!r}; valid: {', '.join(PARTS)}")
        merged[name] = {**part, "measured_at": now}
    ordered = {name: merged[name] for name in PARTS if name in merged}
    return {"schema": SCHEMA, "updated_at": now, "environment": dict(environment), "parts": ordered}
