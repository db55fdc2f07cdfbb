"""What a compare across Python environments adds to its report: the environments (their Python
and versions), the table of each contender in each environment against the first, in every
measure, and environments.png, each contender's headline cost per environment with its interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from harness.machine.environment import FRAMEWORKS
from harness.measure.registry import get_measure
from harness.measure.stats import Estimate
from targets.server_table import server_packages

if TYPE_CHECKING:
    from harness.measure.measure import Measure
    from harness.measure.report import CompareReport

LEFT = ("set", "environment", "versions")
SHOWN_PACKAGES = tuple(
    dict.fromkeys((*FRAMEWORKS, *server_packages()))
)  # the versions the table of environments shows


def _measures(report: CompareReport) -> list[Measure]:
    return [m for name in report.measures if (m := get_measure(name)).in_table]


def _est(e: Estimate | None, digits: int) -> str:
    return e.format(digits) if e else "—"


def _change(e: Estimate | None, digits: int) -> str:
    return e.format_change(digits) if e else "—"


def environments(report: CompareReport) -> list[dict[str, Any]]:
    return list(report.settings.get("pythons") or [])


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
    measures = _measures(report)
    return (
        "set", "environment",
        *(f"{m.per_unit} ({m.short})" for m in measures),
        *(f"change {m.unit} ({m.short})" for m in measures),
        "rounds",
    )  # fmt: skip


def env_rows(report: CompareReport) -> list[list[str]]:
    """Each contender in each environment: its cost, and its change from the first
    environment's, paired round by round."""
    measures = _measures(report)
    return [
        [
            row.name, row.python,
            *(_est(row.entry.cost(m.name), m.digits) for m in measures),
            *(_change(row.difference(m.name), m.digits) for m in measures),
            str(len(row.entry.ok_rounds)),
        ]
        for row in report.env_rows
    ]  # fmt: skip


def python_rows(report: CompareReport) -> list[list[str]]:
    differing = differing_packages(report)
    return [
        [one["name"], one["path"], versions_said(one, differing)] for one in environments(report)
    ]


PYTHON_COLUMNS = ("environment", "interpreter", "versions")


def env_tables(report: CompareReport) -> list[Table]:
    tables = []
    for title, columns, body in env_sections(report):
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(
                column, justify="left" if column in (*LEFT, "interpreter") else "right"
            )
        for row in body:
            table.add_row(*row)
        tables.append(table)
    return tables


def env_sections(report: CompareReport) -> list[tuple[str, tuple[str, ...], list[list[str]]]]:
    """The report's sections for its environments: what each is, and the comparison."""
    if not report.env_rows:
        return []
    differing = differing_packages(report)
    what = "the environments" + (f" (what differs: {', '.join(sorted(differing))})" if differing
                                 else " (the same versions and start-up hooks)")  # fmt: skip
    return [
        (what, PYTHON_COLUMNS, python_rows(report)),
        (env_title(report), env_columns(report), env_rows(report)),
    ]


def env_chart(report: CompareReport, path: Path) -> Path | None:
    """Each contender's headline cost in each environment, side by side, with 95% error bars."""
    rows = report.env_rows
    if not rows:
        return None
    import matplotlib.pyplot as plt

    from harness.output.charts import COLORS, chart_style, literal, save_figure, titles

    measure = report.headline
    names = list(dict.fromkeys(row.name for row in rows))
    pythons = list(report.pythons)
    with chart_style():
        fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4.6))
        width = 0.8 / len(pythons)
        for k, python in enumerate(pythons):
            xs, ys, errors = [], [], []
            for i, name in enumerate(names):
                row = next((r for r in rows if r.name == name and r.python == python), None)
                cost = row.entry.cost(measure.name) if row else None
                if cost is None:
                    continue
                xs.append(i + (k - (len(pythons) - 1) / 2) * width)
                ys.append(cost.median)
                change = row.difference(measure.name) if row else None
                if change is not None:  # the change from the first environment, over its bar
                    said = change.format_change(measure.digits, not_significant=" (n.s.)")
                    ax.annotate(said, (xs[-1], cost.high or cost.median), xytext=(0, 3),
                                textcoords="offset points", ha="center", fontsize=7)  # fmt: skip
                low = cost.median - cost.low if cost.low is not None else 0.0
                errors.append((low, cost.high - cost.median if cost.high is not None else 0.0))
            ax.bar(xs, ys, width, color=COLORS[k % len(COLORS)], alpha=0.85,
                   label=literal(python), yerr=list(zip(*errors, strict=True)) if errors else None,
                   capsize=4, error_kw={"elinewidth": 1, "ecolor": "#333333"})  # fmt: skip
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([literal(n) for n in names], fontsize=8,
                           rotation=30 if len(names) > 5 else 0,
                           ha="right" if len(names) > 5 else "center")  # fmt: skip
        ax.set_ylabel(f"{measure.unit} per request")
        differing = differing_packages(report)
        said = (
            "; ".join(f"{one['name']}: {versions_said(one, differing)}"
                      for one in environments(report))
            if differing
            else "the same versions and start-up hooks in each"
        )  # fmt: skip
        titles(
            ax,
            f"{measure.title} per environment",
            literal(f"median of the rounds, error bars: 95% interval; {said}"),
        )
        ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
        return save_figure(fig, path)
