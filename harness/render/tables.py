"""Tables from (title, columns, rows) sections, for the terminal (rich) and for Markdown: the
columns named in `left` are aligned left, every other one (figures) right."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table

from harness.stats.intervals import Estimate

Section = tuple[str, tuple[str, ...], list[list[str]]]


def rich_tables(sections: Iterable[Section], left: Sequence[str]) -> list[Table]:
    tables = []
    for title, columns, body in sections:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, justify="left" if column in left else "right")
        for row in body:
            table.add_row(*row)
        tables.append(table)
    return tables


def markdown_table(
    columns: Sequence[str], body: Iterable[Sequence[str]], left: Sequence[str]
) -> list[str]:
    """The table's lines; a `|` in a cell escaped."""
    align = "|" + "|".join(":---" if c in left else "---:" for c in columns) + "|"
    return [
        "| " + " | ".join(columns) + " |",
        align,
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body),
    ]


def estimate_cell(e: Estimate | None, digits: int = 1) -> str:
    """An estimate in a table's cell: `median ± half-width`, or a dash where there is none."""
    return e.format(digits) if e else "—"


def change_cell(e: Estimate | None, digits: int = 1) -> str:
    """A difference in a table's cell: signed, with its interval, said when not significant."""
    return e.format_change(digits) if e else "—"
