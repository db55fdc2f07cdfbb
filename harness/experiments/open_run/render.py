"""What `harness run URL --rate` writes: a table per rate, the capacity, NAME.latency.json."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from harness.experiments.compare.capacity import describe_capacity
from harness.load.files import write_json
from harness.measures.latency import PERCENTILES

if TYPE_CHECKING:
    from pathlib import Path

    from harness.experiments.open_run.run import OpenRun

COLUMNS = (
    "rate req/s",
    "run",
    "achieved",
    *(f"{p} ms" for p in PERCENTILES),
    "dropped",
    "errors",
    "k6 CPU",
    "sustained",
)


def rows(run: OpenRun) -> list[list[str]]:
    """The rates asked, then the capacity search's probes, each by rate."""
    table = []
    within = {p["rate"]: p["within"] for p in (run.capacity.probes if run.capacity else [])}
    runs = [(r, "asked") for r in run.rates]
    runs += [(r, "probe: " + ("within" if within.get(r.rate) else "missed")) for r in run.probes]
    for r, kind in sorted(runs, key=lambda one: (one[1] != "asked", one[0].rate)):
        table.append(
            [
                f"{r.rate:,.0f}",
                kind,
                f"{r.achieved:,.0f}",
                *(f"{v:.2f}" if (v := r.percentile(p)) is not None else "—" for p in PERCENTILES),
                str(r.dropped),
                str(r.failed),
                f"{100 * r.k6_busy:.0f}%" if r.k6_busy is not None else "—",
                "yes" if r.status == "ok" else f"no: {r.reason}",
            ]
        )
    return table


def rich_table(run: OpenRun) -> Table:
    table = Table(
        title=f"open model: {run.url}, {run.duration_s:g}s per rate (ms from each "
        "request's intended start)"
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("run", "sustained") else "right")
    for row in rows(run):
        table.add_row(*row)
    return table


def notes(run: OpenRun) -> list[str]:
    lines = [
        "k6 sent each rate on a schedule whatever the answers did (the open model); a latency "
        "counts from when its request was due, so a stall weighs on every request due during it."
    ]
    if run.capacity is not None:
        lines.append(f"capacity within {run.slo}: {describe_capacity(run.capacity)}")
    if run.interrupted:
        lines.append("Interrupted: the rates above are those that finished.")
    return lines


def write_open_run(run: OpenRun) -> Path:
    return write_json(run.json_path, run.to_dict())
