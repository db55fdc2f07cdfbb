"""The demo's report.html fits the page: a compare table of the demo's 15 columns folds those
with nothing to show (memory overheads not significant in any row) into a note, keeps the
flags, and scrolls within its box what is still wider than the page."""

from __future__ import annotations

import re
from pathlib import Path

from harness.experiments.compare.render import columns
from harness.experiments.compare.result import CompareReport
from harness.experiments.demo.render import folded, html_page, markdown
from harness.experiments.demo.run import QUICK, DemoResult

STORED = Path(__file__).resolve().parent / "fixtures" / "demo" / "starlette" / "compare.json"
RETAINED = "overhead B/1k req (retained)"


def _page(tmp_path: Path) -> tuple[CompareReport, str]:
    report = CompareReport.load(STORED)
    result = DemoResult(tmp_path, QUICK, ceiling_qps=report.ceiling_qps, reports=[report])
    return report, html_page(result)


def _first_table(page: str) -> tuple[list[str], list[list[str]], str]:
    table = re.search(r"<div class=wide>(<table>.*?</table>)</div>(<p class=folded>.*?</p>)?", page)
    assert table is not None, page[:2000]
    head = re.findall(r"<th>(.*?)</th>", table.group(1))
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1))[1:]  # the first is the head's
    body = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    return head, body, table.group(2) or ""


def test_the_compare_table_folds_columns_not_significant_in_any_row(tmp_path: Path) -> None:
    report, page = _page(tmp_path)
    full = columns(report)
    assert len(full) == 15 and RETAINED in full  # the demo's measures: what overflowed
    head, body, note = _first_table(page)
    assert RETAINED not in head and RETAINED in note and "not significant in any row" in note
    # a memory overhead that is significant in some row stays
    assert "overhead MiB (rss)" in head
    assert head[0] == "set" and head[-1] == "flags" and len(head) == len(full) - 1
    flags = {row[0]: row[-1] for row in body}
    assert flags["raw-asgi:none"].startswith("wrk-bound"), flags
    assert all(len(row) == len(head) for row in body)
    # the Markdown report keeps every column
    assert RETAINED in markdown(DemoResult(tmp_path, QUICK, reports=[report]))


def test_every_table_scrolls_within_its_box(tmp_path: Path) -> None:
    _, page = _page(tmp_path)
    assert page.count("<table>") == page.count("<div class=wide><table>") > 0
    css = re.search(r"<style>(.*?)</style>", page, re.S)
    assert css is not None and ".wide{overflow-x:auto" in css.group(1)


def test_folded_keeps_the_first_column_and_says_what_went() -> None:
    cols = ("set", "a", "overhead b", "flags")
    body = [["x", "1", "+1 ± 3 (not significant)", ""], ["y", "2", "—", "—"]]
    kept, rows, note = folded(cols, body)
    assert kept == ("set", "a") and rows == [["x", "1"], ["y", "2"]]
    assert "not significant in any row: overhead b" in note and "empty in every row: flags" in note
    # one significant value keeps the column; "no interval" (one round) is not "not significant"
    body[1][2] = "+5 ± 1"
    assert folded(cols, body)[0] == ("set", "a", "overhead b")
    body[1][2] = "+5 (no interval)"
    assert folded(cols, body)[0] == ("set", "a", "overhead b")
    assert folded(("set", "a"), [["only", "1"]]) == (("set", "a"), [["only", "1"]], "")
