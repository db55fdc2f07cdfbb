"""Diff two runs (`.dat` or `.json`): rows matched by concurrency, every row kept, two charts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

from rich.table import Table

from harness.experiments.sweep.plan import DEFAULT_OUT_DIR, check_out_dir
from harness.experiments.sweep.progress import format_ms
from harness.load.datfile import DatRow
from harness.load.results import Series, load_series


@dataclass(frozen=True)
class DiffRow:
    concurrency: int
    a: DatRow | None  # None: this level is only in B
    b: DatRow | None

    @property
    def comparable(self) -> bool:
        """Both rows measured the URL: a row whose answers were all errors (success 0) measured
        the error path, and a speed-up against it would be a number about nothing."""
        return self.a is not None and self.b is not None and not (self.a.no_2xx or self.b.no_2xx)

    def _pair(self, attr: str) -> tuple[float | None, float | None]:
        if not self.comparable:
            return None, None
        return getattr(self.a, attr), getattr(self.b, attr)

    @property
    def qps_change_pct(self) -> float | None:
        """B's QPS relative to A's, in percent (+ means B is faster)."""
        a, b = self._pair("qps")
        return None if not a or b is None else 100.0 * (b - a) / a

    @property
    def latency_change_pct(self) -> float | None:
        a, b = self._pair("avg_latency_ms")
        return None if not a or b is None else 100.0 * (b - a) / a

    @property
    def success_change_pp(self) -> float | None:
        a = self.a.success_pct if self.a else None
        b = self.b.success_pct if self.b else None
        return None if a is None or b is None else b - a


@dataclass
class DiffResult:
    a: Series
    b: Series
    rows: list[DiffRow]
    charts: list[Path] = field(default_factory=list)

    @staticmethod
    def _peak(series: Series) -> DatRow | None:
        rows = [row for row in series.measured_rows if row.qps is not None]
        return max(rows, key=lambda row: row.qps or 0.0, default=None)

    @property
    def peak_a(self) -> DatRow | None:
        return self._peak(self.a)

    @property
    def peak_b(self) -> DatRow | None:
        return self._peak(self.b)

    @property
    def peak_ratio_pct(self) -> float | None:
        """A's peak QPS as a percentage of B's (the source document's `13.68%`)."""
        a, b = self.peak_a, self.peak_b
        if a is None or b is None or not b.qps or a.qps is None:
            return None
        return 100.0 * a.qps / b.qps


def match_rows(a: Series, b: Series) -> list[DiffRow]:
    """Every row of both, paired by concurrency in file order (a level repeated in one file
    pairs with the same repeat in the other), sorted by concurrency."""
    by_a: dict[int, list[DatRow]] = defaultdict(list)
    by_b: dict[int, list[DatRow]] = defaultdict(list)
    for row in a.rows:
        by_a[row.concurrency].append(row)
    for row in b.rows:
        by_b[row.concurrency].append(row)
    rows = []
    for level in sorted(by_a.keys() | by_b.keys()):
        for one, other in zip_longest(by_a.get(level, []), by_b.get(level, [])):
            rows.append(DiffRow(level, one, other))
    return rows


def diff(
    *, a: Path | str, b: Path | str, out_dir: Path | str = DEFAULT_OUT_DIR, charts: bool = True
) -> DiffResult:
    """Load both (ResultError names a bad file and line), match them, and draw
    A_B.qps.ttlb.diff.png and A_B.successrate.diff.png in out_dir."""
    series_a, series_b = load_series(Path(a)), load_series(Path(b))
    out = Path(out_dir)
    check_out_dir(out)
    result = DiffResult(series_a, series_b, match_rows(series_a, series_b))
    if charts:
        from harness.render.charts import plot_diff

        result.charts = plot_diff(series_a, series_b, out)
    return result


def _row_cell(row: DatRow | None, attr: str) -> str:
    value = getattr(row, attr) if row is not None else None
    if value is None:
        return "—"
    if attr == "success_pct":
        return f"[red]{value:.2f}%[/]" if value == 0.0 else f"{value:.2f}%"
    text = f"{value:,.0f}" if attr == "qps" else format_ms(value)
    # Every answer an error: the number is the error path's, and the cell says so.
    return f"[red]{text} not 2xx[/]" if row is not None and row.no_2xx else text


def _change(value: float | None, unit: str = "%", good_when_up: bool = True) -> str:
    if value is None:
        return "—"
    style = "green" if (value >= 0) == good_when_up else "red"
    return f"[{style}]{value:+.1f}{unit}[/]"


def diff_table(result: DiffResult) -> Table:
    """One row per concurrency level: both runs and the change, B relative to A."""
    na, nb = result.a.name, result.b.name
    table = Table(title=f"{na} (A) vs {nb} (B); change is B relative to A", title_justify="left")
    table.add_column("c", justify="right")
    for column in (f"{na} QPS", f"{nb} QPS", "QPS Δ", f"{na} avg", f"{nb} avg", "latency Δ"):
        table.add_column(column, justify="right")
    for column in (f"{na} success", f"{nb} success", "success Δ"):
        table.add_column(column, justify="right")
    for row in result.rows:
        table.add_row(
            str(row.concurrency),
            _row_cell(row.a, "qps"),
            _row_cell(row.b, "qps"),
            _change(row.qps_change_pct),
            _row_cell(row.a, "avg_latency_ms"),
            _row_cell(row.b, "avg_latency_ms"),
            _change(row.latency_change_pct, good_when_up=False),
            _row_cell(row.a, "success_pct"),
            _row_cell(row.b, "success_pct"),
            _change(row.success_change_pp, unit=" pp"),
        )
    return table
