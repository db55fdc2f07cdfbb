"""The `.dat` format of the source document's wrktest.sh: the one place that reads and writes it.

One line per level, no header, space-separated: `concurrency qps avg_latency_ms success_pct`.
The original script's awk could also write `-nan`/`inf` (nothing attempted), an empty latency
field for units it did not know (`m`, `h`), and some tools add a `%` to the rate: these load,
as missing values, or a DatError names the file and line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import RunError

COLUMNS = ("concurrency", "qps", "avg_latency_ms", "success_pct")


class DatError(RunError):
    """A line that is not a .dat row; the message starts with `FILE:LINE:`."""


@dataclass(frozen=True)
class DatRow:
    concurrency: int
    qps: float | None
    avg_latency_ms: float | None
    success_pct: float | None

    @property
    def no_2xx(self) -> bool:
        """Every answer was an error (success 0.00% of a level that completed requests): its QPS
        and latency measure the error path, not the URL's. Read off the row itself, so that a
        .dat (the original script's too) says it as well as a .json does."""
        return self.success_pct == 0.0


def format_row(row: DatRow) -> str:
    def num(value: float | None, spec: str) -> str:
        # A missing value is `nan`, which the original's gnuplot and this module both read.
        return "nan" if value is None else format(value, spec)

    # Latency as awk prints it (6 significant digits), so microseconds keep their precision.
    return (
        f"{row.concurrency} {num(row.qps, '.2f')} {num(row.avg_latency_ms, '.6g')} "
        f"{num(row.success_pct, '.2f')}"
    )


def append_row(path: Path, row: DatRow) -> int:
    """Append one line, all or nothing: if the write fails (a full disk), the file is cut back
    to its size before, so it never ends in half a line; the OSError is raised. Returns that
    size, for a caller that must undo the line later (truncate_to)."""
    data = (format_row(row) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        before = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(data):  # a write to a nearly full disk may be partial
                written += os.write(fd, data[written:])
        except BaseException:
            os.ftruncate(fd, before)  # shrinking needs no space
            raise
    finally:
        os.close(fd)
    return before


def truncate_to(path: Path, size: int) -> None:
    """Cut `path` back to `size` bytes: undo what append_row appended."""
    os.truncate(path, size)


def write_rows(path: Path, rows: Iterable[DatRow]) -> None:
    path.write_text("".join(format_row(row) + "\n" for row in rows), encoding="utf-8")


def _number(text: str, where: str, column: str) -> float | None:
    cleaned = text.strip().rstrip("%")
    try:
        value = float(cleaned)
    except ValueError:
        raise DatError(f"{where}: {column} is not a number: {text!r}") from None
    return value if math.isfinite(value) else None


def parse_line(line: str, where: str) -> DatRow | None:
    """One line -> a row; None for a blank line or a `#` comment."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    parts = stripped.split()
    spaced = stripped.split(" ")
    if len(parts) == 3 and len(spaced) == 4 and spaced[2] == "":
        # The original's awk printed an empty latency for units it did not know (m, h): two
        # spaces where the field was. A row without a latency, as a non-finite one reads.
        return DatRow(
            concurrency=_concurrency(parts[0], where),
            qps=_number(parts[1], where, "qps"),
            avg_latency_ms=None,
            success_pct=_number(parts[2], where, "success_pct"),
        )
    if len(parts) != len(COLUMNS):
        raise DatError(
            f"{where}: expected {len(COLUMNS)} columns ({' '.join(COLUMNS)}), "
            f"got {len(parts)}: {stripped!r}"
        )
    return DatRow(
        concurrency=_concurrency(parts[0], where),
        qps=_number(parts[1], where, "qps"),
        avg_latency_ms=_number(parts[2], where, "avg_latency_ms"),
        success_pct=_number(parts[3], where, "success_pct"),
    )


def _concurrency(text: str, where: str) -> int:
    concurrency = _number(text, where, "concurrency")
    if concurrency is None or concurrency <= 0 or concurrency != int(concurrency):
        raise DatError(f"{where}: concurrency must be a positive integer: {text!r}")
    return int(concurrency)


def load_dat(path: Path) -> list[DatRow]:
    """Every row, in file order (the first one included)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        row = parse_line(line, f"{path}:{number}")
        if row is not None:
            rows.append(row)
    if not rows:
        raise DatError(f"{path}: no rows")
    return rows
