"""docs/api.md's runnable example, run as it is written: the public API keeps its word."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

import harness

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_the_public_names_resolve() -> None:
    for name in harness.__all__:
        assert getattr(harness, name) is not None
    with pytest.raises(AttributeError):
        harness.no_such_thing  # noqa: B018


def test_the_runnable_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (example, *_) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(DOC), "exec"), {})
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["none", "dump", "raw-asgi:none"]
    assert "vs none" in lines[1] and "vs raw-asgi:none" in lines[0]
    data = json.loads((tmp_path / "_output/api-example/compare.json").read_text())
    assert [s["name"] for s in data["sets"]] == ["none", "dump"]
    assert (tmp_path / "_output/api-example/overhead.png").stat().st_size > 0
