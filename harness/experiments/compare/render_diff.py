"""What `harness diff A/compare.json B/compare.json` shows and writes: per measure, each set's
change from A to B with its interval; compare-diff.json and compare-diff.md beside the charts."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from harness.experiments.compare.diff import Change, CompareDiff, changes_for, signed
from harness.load.files import write_atomic, write_json
from harness.measures.registry import get_measure
from harness.render.tables import markdown_table
from harness.stats.intervals import Estimate

COLUMNS = ("set", "compared", "A", "B", "change", "change %", "")
LEFT = ("set", "compared", "")


def _value(e: Estimate | None, digits: int) -> str:
    return e.format(digits) if e else "—"


def _change(change: Change, digits: int) -> str:
    return signed(change.change, digits) if change.change is not None else "—"


def _verdict(change: Change, diff: CompareDiff) -> str:
    found = change.change
    if found is None or not found.has_interval:
        verdict = "no interval"
    elif found.significant:
        verdict = "slower" if found.median > 0 else "faster"
    else:
        verdict = "not significant"
    gate = diff.gate
    return verdict + (" · over the gate" if gate is not None and gate.exceeded_by(change) else "")


def rows(diff: CompareDiff, measure: str) -> list[list[str]]:
    digits = get_measure(measure).digits
    return [
        [
            c.label,
            c.quantity,
            _value(c.before, digits),
            _value(c.after, digits),
            _change(c, digits),
            f"{c.pct:+.2f}%" if c.pct is not None else "—",
            _verdict(c, diff),
        ]
        for c in changes_for(diff, measure)
    ]


def title(diff: CompareDiff, measure: str) -> str:
    m = get_measure(measure)
    return f"{m.title} ({m.unit}), A → B: B minus A, 95% interval (Welch)"


def rich_tables(diff: CompareDiff) -> list[Table]:
    tables = []
    for measure in diff.measures:
        table = Table(title=title(diff, measure), title_justify="left")
        for column in COLUMNS:
            table.add_column(column, justify="left" if column in LEFT else "right")
        for row in rows(diff, measure):
            table.add_row(*row)
        tables.append(table)
    return tables


def notes(diff: CompareDiff) -> list[str]:
    lines = [
        f"A: {diff.a.json_path} ({diff.a.environment.get('date', 'undated')}); "
        f"B: {diff.b.json_path} ({diff.b.environment.get('date', 'undated')}).",
        "A set is compared by its overhead over its reference (its cost where it has none); the "
        "two runs' rounds are independent, so the interval is Welch's.",
    ]
    differently = diff.measured_differently
    if differently:
        lines.append(
            "Measured differently, which changes the figures by itself: "
            + "; ".join(differently)
            + "."
        )
    if diff.only_a:
        lines.append(f"Only in A: {', '.join(diff.only_a)}.")
    if diff.only_b:
        lines.append(f"Only in B: {', '.join(diff.only_b)}.")
    if diff.gate is not None:
        unit = get_measure(diff.gate.measure).unit
        lines.append(
            f"Gate: {diff.gate.measure} {diff.gate.describe(unit)}, on changes the rounds tell "
            "from zero: "
            + ("; ".join(diff.regression_lines()) or "none over it")
            + "."
            + (
                f" Not judged, with no figure in one run: {', '.join(diff.unjudged)}."
                if diff.unjudged
                else ""
            )
        )
    return lines


def markdown(diff: CompareDiff) -> str:
    lines = ["# compare diff", ""]
    for measure in diff.measures:
        lines += [f"## {title(diff, measure)}", ""]
        lines += [*markdown_table(COLUMNS, rows(diff, measure), LEFT), ""]
    return "\n".join([*lines, *(f"- {line}" for line in notes(diff)), ""])


def summary(diff: CompareDiff) -> str:
    """A pull-request comment: the verdict first, the headline measure's table, the other
    measures folded away (GitHub's and GitLab's Markdown both render <details>)."""
    headline, *others = diff.measures
    regressions = diff.regressions
    if diff.gate is None:
        verdict = "**mwbench**: no gate given (`--max-regression`): the changes, for reading."
    elif regressions:
        verdict = (
            f"**mwbench: {len(regressions)} regression(s) over the gate** "
            f"({diff.gate.describe(get_measure(diff.gate.measure).unit)}): "
            + "; ".join(diff.regression_lines())
        )
    else:
        unit = get_measure(diff.gate.measure).unit
        verdict = f"**mwbench: no regression over the gate** ({diff.gate.describe(unit)})."
    lines = [verdict, "", f"{title(diff, headline)}", "", *_md_table(diff, headline), ""]
    if others:
        lines += ["<details><summary>the other measures</summary>", ""]
        for measure in others:
            lines += [f"{title(diff, measure)}", "", *_md_table(diff, measure), ""]
        lines += ["</details>", ""]
    lines += [f"<sub>{line}</sub>  " for line in notes(diff)]
    return "\n".join(lines) + "\n"


def _md_table(diff: CompareDiff, measure: str) -> list[str]:
    """The measure's table, its verdict column named (a comment is read without the notes)."""
    return markdown_table((*COLUMNS[:-1], "verdict"), rows(diff, measure), (*LEFT, "verdict"))


def write_compare_diff(diff: CompareDiff, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "compare-diff.json", out_dir / "compare-diff.md"]
    write_json(files[0], diff.to_dict())
    write_atomic(files[1], markdown(diff))
    return files
