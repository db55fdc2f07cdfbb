"""What a compare across Python environments adds to its report: the environments (their Python
and versions), the table of each contender in each environment against the first, in every
measure, and environments.png, each contender's headline cost per environment with its interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from harness.experiments.compare.render_axes import axis_body, axis_chart, axis_columns
from harness.machine.environment import FRAMEWORKS
from harness.render.tables import rich_tables
from targets.server_table import server_packages

if TYPE_CHECKING:
    from harness.experiments.compare.result import CompareReport

LEFT = ("set", "environment", "versions")
SHOWN_PACKAGES = tuple(
    dict.fromkeys((*FRAMEWORKS, *server_packages()))
)  # the versions the table of environments shows


def environments(report: CompareReport) -> list[dict[str, Any]]:
    return list(report.settings.pythons or [])


def versions_said(one: dict[str, Any], differing: set[str] | None = None) -> str:
    """An environment's Python and its packages' versions: those that differ between the
    environments when `differing` is given (all the shown ones when none differ)."""
    packages = recorded(one)
    names = sorted(differing) if differing else [p for p in SHOWN_PACKAGES if p in packages]
    said = [f"{name} {packages.get(name, 'absent')}" for name in names]
    return ", ".join([f"Python {one.get('python')}", *said])


def recorded(one: dict[str, Any]) -> dict[str, str]:
    """An environment's packages' versions and its start-up hooks' digests: what can differ."""
    return {**(one.get("packages") or {}), **(one.get("startup") or {})}


def differing_packages(report: CompareReport) -> set[str]:
    """The packages whose version, and the start-up hooks (sitecustomize) whose source, is not
    the same in every environment."""
    found = [recorded(one) for one in environments(report)]
    names = {name for one in found for name in one}
    return {n for n in names if len({one.get(n) for one in found}) > 1}


def env_title(report: CompareReport) -> str:
    first = report.pythons[0] if report.pythons else "the first"
    return f"environments, each against {first}"


def env_columns(report: CompareReport) -> tuple[str, ...]:
    return axis_columns(report, "environment")


def env_rows(report: CompareReport) -> list[list[str]]:
    """Each contender in each environment: its cost, and its change from the first
    environment's, paired round by round."""
    return axis_body(report, report.env_rows)


def python_rows(report: CompareReport) -> list[list[str]]:
    differing = differing_packages(report)
    return [
        [one["name"], one["path"], versions_said(one, differing)] for one in environments(report)
    ]


PYTHON_COLUMNS = ("environment", "interpreter", "versions")


def env_tables(report: CompareReport) -> list[Table]:
    return rich_tables(env_sections(report), (*LEFT, "interpreter"))


def env_sections(report: CompareReport) -> list[tuple[str, tuple[str, ...], list[list[str]]]]:
    """The report's sections for its environments: what each is, and the comparison."""
    if not report.env_rows:
        return []
    differing = differing_packages(report)
    what = "the environments" + (
        f" (what differs: {', '.join(sorted(differing))})"
        if differing
        else " (the same versions and start-up hooks)"
    )
    return [
        (what, PYTHON_COLUMNS, python_rows(report)),
        (env_title(report), env_columns(report), env_rows(report)),
    ]


def env_chart(report: CompareReport, path: Path) -> Path | None:
    """Each contender's headline cost in each environment, side by side, with 95% error bars."""
    differing = differing_packages(report)
    said = (
        "; ".join(f"{one['name']}: {versions_said(one, differing)}" for one in environments(report))
        if differing
        else "the same versions and start-up hooks in each"
    )
    return axis_chart(
        report,
        report.env_rows,
        report.pythons,
        f"{report.headline.title} per environment",
        said,
        path,
    )
