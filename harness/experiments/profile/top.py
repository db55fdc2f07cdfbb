"""pprof's `top -cum` over collapsed stacks.

flat: samples in which the function is the leaf (running its own code);
cum: samples in which the function is anywhere on the stack, counted once per sample however
often it recurses; sum%: the running total of flat% down the printed rows, as pprof prints it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from harness.experiments.profile.collapsed import Frame, Stacks, total_samples


@dataclass(frozen=True)
class TopRow:
    frame: Frame
    flat: int
    flat_pct: float
    sum_pct: float
    cum: int
    cum_pct: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.frame.function,
            "file": self.frame.file,
            "line": self.frame.line,
            "flat": self.flat,
            "flat_pct": round(self.flat_pct, 2),
            "sum_pct": round(self.sum_pct, 2),
            "cum": self.cum,
            "cum_pct": round(self.cum_pct, 2),
        }


def flat_and_cum(stacks: Stacks) -> tuple[Counter[Frame], Counter[Frame]]:
    flat: Counter[Frame] = Counter()
    cum: Counter[Frame] = Counter()
    for stack, count in stacks.items():
        if not stack:
            continue
        flat[stack[-1]] += count
        for frame in set(stack):  # a recursive function counts once per sample
            cum[frame] += count
    return flat, cum


def top_cum(stacks: Stacks, n: int | None = 30) -> list[TopRow]:
    """The `n` functions with the largest cum (all of them for None), largest first; ties go to
    the larger flat, then by name, so the order is stable."""
    total = total_samples(stacks)
    flat, cum = flat_and_cum(stacks)
    order = sorted(cum, key=lambda f: (-cum[f], -flat[f], f.label))
    rows: list[TopRow] = []
    running = 0.0
    for frame in order[:n] if n is not None else order:
        flat_pct = _pct(flat[frame], total)
        running += flat_pct
        rows.append(
            TopRow(frame, flat[frame], flat_pct, running, cum[frame], _pct(cum[frame], total))
        )
    return rows


def _pct(part: int, total: int) -> float:
    return 100.0 * part / total if total else 0.0


def format_top(rows: list[TopRow], total: int, *, width: int | None = None) -> str:
    """The table as pprof prints it: right-aligned numbers, then the function."""
    header = f"{'flat':>7} {'flat%':>6} {'sum%':>6} {'cum':>7} {'cum%':>6}  function"
    lines = [
        f"Showing the top {len(rows)} functions by cumulative samples, of {total} samples",
        header,
    ]
    for row in rows:
        line = (
            f"{row.flat:>7} {row.flat_pct:>5.2f}% {row.sum_pct:>5.2f}% "
            f"{row.cum:>7} {row.cum_pct:>5.2f}%  {row.frame.label}"
        )
        lines.append(line if width is None else line[:width])
    return "\n".join(lines)
