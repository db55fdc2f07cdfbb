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
    assert sorted(harness._API) == harness.__all__  # one list of what is public
    for name in harness.__all__:
        assert getattr(harness, name) is not None
    with pytest.raises(AttributeError):
        harness.no_such_thing  # noqa: B018


def test_the_runnable_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compare, diff, calibrate, sweep = re.findall(
        r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S
    )
    monkeypatch.chdir(tmp_path)

    def run(example: str) -> list[str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(example, str(DOC), "exec"), {})
        return out.getvalue().splitlines()

    lines = run(compare)
    assert [line.split()[0] for line in lines] == ["none", "dump", "raw-asgi:none"]
    assert "vs none" in lines[1] and "vs raw-asgi:none" in lines[0]
    data = json.loads((tmp_path / "_output/api-example/compare.json").read_text())
    assert [s["name"] for s in data["sets"]] == ["none", "dump"]
    assert (tmp_path / "_output/api-example/overhead.png").stat().st_size > 0

    changes = run(diff)  # the run against itself, read back: no change, in both measures
    assert len(changes) == 6 and all(line.split()[3] == "0.0" for line in changes), changes

    checked, layer = run(calibrate)
    assert checked.split()[0] in ("True", "False")  # the verdict is the measurement's
    assert layer.split()[0] and layer.endswith("%")
    assert (tmp_path / "_output/api-profile/flask-dump.svg").stat().st_size > 0

    (peak,) = run(sweep)
    assert float(peak.split()[0]) > 0 and peak.endswith("flask-2mw.dat")
