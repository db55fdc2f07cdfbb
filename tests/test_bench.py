"""The bench's pure functions: figures, tables, verdicts, the results.json document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import agreement, micro_all, precision, references
from bench.report import (
    PARTS,
    SCHEMA,
    document,
    fmt_est,
    fmt_pct,
    foreign_load,
    format_part,
    format_table,
    half_width,
    table,
    verdict,
)


def _est(median: float, low: float | None, high: float | None) -> dict[str, Any]:
    return {"median": median, "low": low, "high": high, "n": 3}


def test_fmt_est_and_half_width() -> None:
    assert fmt_est(_est(2.5, 2.0, 3.2)) == "2.500 ±0.600"
    assert fmt_est(_est(2.5, 2.0, 3.2), digits=1, sign=True) == "+2.5 ±0.6"
    assert fmt_est(_est(1.0, None, None)) == "1.000"
    assert fmt_est(None) == "—"
    assert half_width(_est(0, -1, 3)) == 2.0 and half_width(None) is None
    assert fmt_pct(12.345) == "+12.3%" and fmt_pct(None) == "—"
    assert fmt_pct(5, 0, sign=False) == "5%"


def test_format_table_aligns_numbers_right_and_text_left() -> None:
    spec = table("T", ["name", "µs"], [["a", "1.5 ±0.2"], ["longer", "10.25"]])
    lines = format_table(spec).splitlines()
    assert lines[0] == "T"
    assert lines[1].startswith("name") and lines[1].endswith("µs")
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert lines[3].startswith("a ") and lines[3].endswith("1.5 ±0.2")
    assert lines[4] == "longer     10.25"
    assert len({len(line) for line in lines[1:]}) == 1  # every row as wide as the header rule


def test_table_pads_and_rejects_long_rows() -> None:
    assert table("T", ["a", "b"], [["x"]])["rows"] == [["x", ""]]
    with pytest.raises(ValueError, match="3 cells"):
        table("T", ["a", "b"], [["x", "y", "z"]])


def test_verdict() -> None:
    assert verdict(_est(-2.0, -3.0, -1.0)) == "ours faster by 2.000 µs"
    assert verdict(_est(2.0, 1.0, 3.0)) == "OURS SLOWER by 2.000 µs"
    assert verdict(_est(0.1, -0.5, 0.7)).startswith("same within noise")
    assert "no interval" in verdict(_est(0.1, None, None))
    assert verdict(None) == "—"


def test_document_merges_parts_and_keeps_the_others() -> None:
    env = {"python": "3.11"}
    first = document({"micro": {"tables": [], "data": {"x": 1}}}, env)
    assert first["schema"] == SCHEMA and list(first["parts"]) == ["micro"]
    assert first["parts"]["micro"]["measured_at"]
    second = document({"agreement": {"data": {}}, "micro": {"data": {"x": 2}}}, env, first)
    assert list(second["parts"]) == ["micro", "agreement"]  # in PARTS order
    assert second["parts"]["micro"]["data"] == {"x": 2}
    third = document({"precision": {"data": {}}}, env, second)
    assert list(third["parts"]) == ["micro", "precision", "agreement"]
    json.dumps(third)  # plain JSON
    with pytest.raises(ValueError, match="unknown bench part"):
        document({"nope": {}}, env)
    assert set(PARTS) == {"micro", "references", "precision", "agreement", "wire", "options",
                          "instructions", "ci", "hog", "latency", "memory"}  # fmt: skip


def test_format_part_prints_tables_and_notes() -> None:
    part = {"wall_s": 12.3, "tables": [table("T1", ["a"], [["1"]])], "notes": ["n1"]}
    text = format_part("micro", part)
    assert text.startswith("== micro (12 s) ==") and "T1" in text and "- n1" in text


def _micro_data() -> dict[str, Any]:
    def one(name: str, stack: list[str], over: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "name": name,
            "middlewares": stack,
            "requests": 100,
            "us_per_request": _est(10.0, 9.0, 11.0),
            "overhead_us": over,
        }

    return {
        "settings": {
            "repeat": 3,
            "batch_s": 0.04,
            "request": {"method": "GET", "path": "/healthz"},
        },
        "excluded": "sockets",
        "targets": [
            {
                "target": "flask",
                "interface": "wsgi",
                "loop": {"us_per_request": _est(0.3, 0.2, 0.4)},
                "none_minus_loop_us": _est(9.7, 9.0, 10.0),
                "sets": [
                    one("none", [], None),
                    one("dump", ["dump"], _est(50.0, 45.0, 55.0)),
                    one("all", ["request-id", "dump"], _est(60.0, 55.0, 65.0)),
                ],
            }
        ],
    }


def test_micro_tables_shape() -> None:
    matrix, own = micro_all.tables(_micro_data())
    assert matrix["columns"] == ["set", "flask"]
    rows = {r[0]: r[1] for r in matrix["rows"]}
    assert rows["none"] == "10.000 ±1.000" and rows["+ dump"] == "+50.000 ±5.000"
    assert rows["+ logger"] == "—"  # not measured
    assert own["rows"] == [["flask", "wsgi", "9.700 ±0.500", "100"]]
    assert any("dump (+50.0 µs)" in n for n in micro_all.notes(_micro_data()))


def test_references_tables_flag_a_slower_middleware() -> None:
    data = {
        "comparisons": [
            {
                "job": "logger",
                "framework": "starlette",
                "case": "GET /healthz",
                "bare": "Starlette, none",
                "notes": [],
                "variants": [
                    {"name": "bare", "us_per_request": _est(10, 9, 11), "added_us": None,
                     "ours_minus_this_us": None},
                    {"name": "ours", "us_per_request": _est(15, 14, 16),
                     "added_us": _est(5, 4, 6), "ours_minus_this_us": None},
                    {"name": "ref", "us_per_request": _est(12, 11, 13),
                     "added_us": _est(2, 1, 3), "ours_minus_this_us": _est(3, 2, 4)},
                ],
            }
        ],
        "legacy": [{"variant": "v", "case": "c", "us": 1.0, "added_us": 0.5}],
    }  # fmt: skip
    main_table, legacy = references.tables(data)
    assert main_table["rows"][2][-1] == "OURS SLOWER by 3.000 µs"
    assert legacy["rows"] == [["v", "c", "1.000", "+0.500"]]
    notes = references.notes(data)
    assert notes and notes[0].startswith("OURS SLOWER: logger on starlette")


def _compare_doc(qps: float, over: float, hw: float, wall: float) -> dict[str, Any]:
    def entry(name: str, ref: str | None, estimate: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "name": name,
            "reference": ref,
            "peak_qps": qps,
            "overheads": {"cpu": estimate, "qps": estimate},
        }

    return {
        "wall_s": wall,
        "sets": [entry("all", "none", _est(over, over - hw, over + hw))],
        "baselines": [entry("raw-asgi:none", None, None)],
    }


def test_precision_agreement_rows() -> None:
    rows = precision.agreement(
        _compare_doc(100.0, 50.0, 4.0, 60), _compare_doc(110.0, 53.0, 2.0, 240)
    )
    by_name = {r["name"]: r for r in rows}
    row = by_name["all"]
    assert row["peak_qps_diff_pct"] == pytest.approx(100 * 10 / 105)
    assert row["overhead_cpu_diff_us"] == pytest.approx(3.0)
    assert row["overhead_cpu_half_width_us"] == [4.0, 2.0]
    # One minute: unchanged; four minutes: twice the half-width per minute's worth.
    assert row["overhead_cpu_half_width_per_minute_us"] == [4.0, 4.0]
    assert by_name["raw-asgi:none"]["overhead_cpu_diff_us"] is None
    data = {"command": "c", "wall_s": [60, 240], "rows": rows}
    agree, width = precision.tables(data)
    assert agree["rows"][0][3] == "+9.5%"
    assert [r[0] for r in width["rows"]] == ["all"]


def test_agreement_plain_parser_and_noise_rule() -> None:
    out = "Running 5s test @ http://x\n  1 threads and 64 connections\nRequests/sec:  21034.55\n"
    assert agreement.parse_plain_qps(out) == pytest.approx(21034.55)
    with pytest.raises(RuntimeError):
        agreement.parse_plain_qps("nothing")
    command = agreement.plain_command("http://h/healthz", "1", 64, 5, "wrk")
    assert command == ["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d5s", "http://h/healthz"]
    assert agreement.within_noise({"diff_pct": _est(3.0, -1.0, 7.0), "spread_pct": 1.0})
    assert agreement.within_noise({"diff_pct": _est(3.0, 2.0, 4.0), "spread_pct": 5.0})
    assert not agreement.within_noise({"diff_pct": _est(8.0, 6.0, 10.0), "spread_pct": 5.0})


def test_foreign_load() -> None:
    assert foreign_load(30.0, 10.0, 20.0) == 1.0
    assert foreign_load(5.0, 6.0, 10.0) == 0.0  # clock granularity: never negative
    assert foreign_load(1.0, 0.0, 0.0) is None
    part = {"wall_s": 10, "foreign_load_cpus": 0.5, "tables": []}
    assert "other processes kept 0.50 CPUs busy" in format_part("micro", part)
