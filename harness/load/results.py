"""A sweep's results: NAME.json (everything) and the series that charts and diff read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import RunError
from harness.load.datfile import DatError, DatRow, load_dat
from harness.load.files import check_versioned, read_json, versioned, write_atomic
from harness.load.wrk_output import WrkResult

SCHEMA = "sweep"
VERSION = 2  # 1: `"schema": 1`, no version (read as version 1: the same fields)


class ResultError(RunError):
    """A results file that cannot be read; the message names the file."""


def dat_row(level: WrkResult) -> DatRow:
    return DatRow(
        concurrency=level.concurrency,
        qps=level.qps,
        avg_latency_ms=level.latency_avg_ms,
        success_pct=level.success_pct,
    )


@dataclass
class SweepResult:
    name: str
    url: str
    out_dir: Path
    settings: dict[str, Any]  # levels, duration_s, timeout_s, threads, warmup_s, wrk, cpus
    levels: list[WrkResult] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str | None = None  # None while running, and when interrupted
    interrupted: bool = False
    charts: list[Path] = field(default_factory=list)

    @property
    def dat_path(self) -> Path:
        return self.out_dir / f"{self.name}.dat"

    @property
    def json_path(self) -> Path:
        return self.out_dir / f"{self.name}.json"

    @property
    def ok_levels(self) -> list[WrkResult]:
        return [level for level in self.levels if level.is_ok]

    @property
    def answered_levels(self) -> list[WrkResult]:
        """The levels with a row in NAME.dat: ok ones, and those where no answer was 2xx/3xx."""
        return [level for level in self.levels if level.answered]

    @property
    def peak(self) -> WrkResult | None:
        """The measured level with the highest QPS, or None if none was measured."""
        return max(self.ok_levels, key=lambda level: level.qps, default=None)

    @property
    def all_failed(self) -> bool:
        return not self.ok_levels

    def level(self, concurrency: int) -> WrkResult | None:
        return next((lv for lv in self.levels if lv.concurrency == concurrency), None)

    def to_dict(self) -> dict[str, Any]:
        peak = self.peak
        return versioned(
            SCHEMA,
            VERSION,
            {
                "name": self.name,
                "url": self.url,
                "settings": self.settings,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "interrupted": self.interrupted,
                "peak": {"concurrency": peak.concurrency, "qps": peak.qps} if peak else None,
                "levels": [level.to_dict() for level in self.levels],
                "environment": self.environment,
                "meta": self.meta,
                "files": {
                    "dat": self.dat_path.name,
                    "charts": [path.name for path in self.charts],
                },
            },
        )

    def save(self) -> Path:
        """Write NAME.json atomically, so a Ctrl-C never leaves half a file."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        return write_atomic(self.json_path, text)

    @classmethod
    def from_dict(cls, data: dict[str, Any], out_dir: Path) -> SweepResult:
        return cls(
            name=data["name"],
            url=data["url"],
            out_dir=out_dir,
            settings=dict(data.get("settings") or {}),
            levels=[WrkResult.from_dict(level) for level in data.get("levels", [])],
            environment=dict(data.get("environment") or {}),
            meta=dict(data.get("meta") or {}),
            started_at=data.get("started_at", ""),
            finished_at=data.get("finished_at"),
            interrupted=bool(data.get("interrupted", False)),
            charts=[out_dir / name for name in (data.get("files") or {}).get("charts", [])],
        )

    @classmethod
    def load(cls, path: Path) -> SweepResult:
        data = read_json(path, error=ResultError)
        if isinstance(data, dict) and "schema" in data:
            check_versioned(
                data, schema=SCHEMA, versions={1, VERSION}, path=path, error=ResultError
            )
        try:
            return cls.from_dict(data, path.parent)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ResultError(f"{path}: not a harness run result ({exc!r} missing)") from None


@dataclass
class Series:
    """One run as charts and diff see it: rows by concurrency, plus what the run really used.

    `rows` are the .dat's: every level wrk completed requests at, a level whose answers were
    all errors included (success 0, `DatRow.no_2xx`); `failed` are the levels without a row."""

    name: str
    path: Path
    rows: list[DatRow]
    duration_s: float | None = None
    threads: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # concurrency -> reason

    @property
    def measured_rows(self) -> list[DatRow]:
        """The rows that measured the URL (some 2xx/3xx): what QPS lines, peaks and ratios use."""
        return [row for row in self.rows if not row.no_2xx]

    @property
    def no_2xx_rows(self) -> list[DatRow]:
        """The rows where every answer was an error: a point at 0% success, not a QPS to plot."""
        return [row for row in self.rows if row.no_2xx]

    @classmethod
    def from_sweep(cls, result: SweepResult, path: Path | None = None) -> Series:
        answered = result.answered_levels
        durations = sorted({round(level.duration_s, 2) for level in answered})
        return cls(
            name=result.name,
            path=path or result.json_path,
            rows=[dat_row(level) for level in answered],
            duration_s=result.settings.get("duration_s") or (durations[0] if durations else None),
            threads=sorted({level.threads for level in answered}),
            failed={lv.concurrency: lv.reason for lv in result.levels if not lv.answered},
        )


def series_name(path: Path) -> str:
    """The name a file gives its run: the file name without its last suffix, literally
    (the original ran `sed 's/.dat//g'`, which also ate `.dat` inside names)."""
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def load_series(path: Path) -> Series:
    """A `.json` written by `harness run`, or any `.dat` (including the original script's)."""
    if not path.exists():
        raise ResultError(f"{path}: no such file")
    if path.suffix == ".json":
        result = SweepResult.load(path)
        series = Series.from_sweep(result, path)
        series.name = series_name(path)
        return series
    try:
        rows = load_dat(path)
    except DatError as exc:
        raise ResultError(str(exc)) from None
    return Series(name=series_name(path), path=path, rows=rows)
