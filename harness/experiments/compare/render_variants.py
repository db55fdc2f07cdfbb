"""What a compare across variants adds to its report: the variants (their variables, secrets
redacted), each contender in each variant against the first, in every measure, and
variants.png, each contender's headline cost per variant with its interval."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from harness.experiments.compare.render_axes import axis_body, axis_chart, axis_columns
from harness.render.tables import rich_tables

if TYPE_CHECKING:
    from harness.experiments.compare.result import CompareReport

VARIANT_COLUMNS = ("variant", "variables")
LEFT = ("set", "variant", "variables")


def variants(report: CompareReport) -> list[dict[str, Any]]:
    return list(report.settings.variants or [])


def _variables(one: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in (one.get("env") or {}).items()) or "nothing set"


def variant_sections(report: CompareReport) -> list[tuple[str, tuple[str, ...], list[list[str]]]]:
    """The report's sections for its variants: what each sets, and the comparison."""
    if not report.variant_rows:
        return []
    first = report.variants[0]
    return [
        ("the variants", VARIANT_COLUMNS, [[v["name"], _variables(v)] for v in variants(report)]),
        (
            f"variants, each against {first}",
            axis_columns(report, "variant"),
            axis_body(report, report.variant_rows),
        ),
    ]


def variant_tables(report: CompareReport) -> list[Table]:
    return rich_tables(variant_sections(report), LEFT)


def variant_chart(report: CompareReport, path: Path) -> Path | None:
    said = "; ".join(f"{v['name']}: {_variables(v)}" for v in variants(report))
    return axis_chart(
        report,
        report.variant_rows,
        report.variants,
        f"{report.headline.title} per variant",
        said,
        path,
    )
