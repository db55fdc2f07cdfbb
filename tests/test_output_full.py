"""The output directory filling up mid-sweep: every finished level stays, whole, in both files,
the error is one line naming the file, and nothing is left running. Replayed with the recorded
wrk, on a real full filesystem (a small tmpfs, root only) and on failures injected per file."""

from __future__ import annotations

import errno
import json
import os
import pkgutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner, Result

import harness.load.datfile as datfile
from harness.cli.main import main
from harness.load.datfile import DatRow, append_row, load_dat

FAKE_WRK = str(Path(__file__).parent / "fixtures" / "wrk" / "fake_wrk.py")
URL = "http://127.0.0.1:8000/healthz"
LEVELS = ",".join(str(c) for c in range(1, 41))  # far more than 32 KiB of NAME.json holds


def run(monkeypatch: pytest.MonkeyPatch, out: Path, levels: str, *args: str) -> Result:
    monkeypatch.setenv("FAKE_WRK_PLAN", "*=ceiling_latency")
    monkeypatch.delenv("HARNESS_WRK", raising=False)
    return CliRunner().invoke(
        main,
        ["run", URL, "-d", str(out), "-n", "job", "--wrk", FAKE_WRK, "--warmup", "0",
         "-c", levels, *args],
    )  # fmt: skip


def assert_consistent(out: Path, result: Result, kept: int) -> None:
    """One error line naming what failed and how many levels are kept; both files hold exactly
    those levels, every .dat line whole; no temporary file and no process left."""
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "No space left on device" in error
    assert f"its {kept} finished levels are kept in {out / 'job.dat'} and {out / 'job.json'}" in (
        error
    )
    levels = json.loads((out / "job.json").read_text())["levels"]
    text = (out / "job.dat").read_text()
    assert text.endswith("\n") and len(text.splitlines()) == kept == len(levels)
    rows = load_dat(out / "job.dat")
    assert [(r.concurrency, r.qps) for r in rows] == [
        (lv["concurrency"], lv["qps"]) for lv in levels
    ]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    assert [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"] == []


@pytest.fixture
def small_tmpfs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tmpfs of 32 KiB, or of the size a test's `tmpfs_size` mark gives."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mark = request.node.get_closest_marker("tmpfs_size")
    size = mark.args[0] if mark else "32k"
    mount = tmp_path / f"full-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_filesystem_filling_up_mid_sweep_keeps_every_finished_level(
    small_tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = small_tmpfs / "wrk"
    result = run(monkeypatch, out, LEVELS)
    kept = len(json.loads((out / "job.json").read_text())["levels"])
    assert 5 < kept < 40, result.output  # it filled up mid-sweep, not before or never
    assert_consistent(out, result, kept)
    assert f"cannot write {out / 'job.json'}" in result.output


PNG_END = b"IEND\xaeB`\x82"  # a PNG's last chunk: a file without it was cut short


@pytest.mark.tmpfs_size("120k")
def test_a_disk_that_fills_up_with_the_charts_keeps_every_level_and_no_broken_chart(
    small_tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Room for the levels, not for all three charts: the levels all stay, each chart is whole or
    # absent, and the error is one line.
    out = small_tmpfs / "wrk"
    result = run(monkeypatch, out, "1,2,4,8")
    assert result.exit_code == 1 and "Traceback" not in result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert f"cannot write the charts in {out}: No space left on device" in error, error
    assert "4 finished levels are kept" in error
    assert [row.concurrency for row in load_dat(out / "job.dat")] == [1, 2, 4, 8]
    assert len(json.loads((out / "job.json").read_text())["levels"]) == 4
    charts = list(out.glob("*.png"))
    assert len(charts) < 3  # the disk did fill up
    for chart in charts:
        assert chart.read_bytes().endswith(PNG_END), chart
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def _full(*_args: object, **_kwargs: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(
    ("writer", "failing_call", "file"),
    [
        # the .dat line of level 3 cannot be appended: the .json stays as it was
        ("harness.experiments.sweep.run:append_row", 3, "job.dat"),
        # the first save is the empty result, before any level: the 4th is level 3's, and the
        # .dat line it follows is taken back
        ("harness.load.results:SweepResult.save", 4, "job.json"),
    ],
)
def test_a_write_that_fails_keeps_the_files_consistent_with_the_levels_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str, failing_call: int, file: str
) -> None:
    calls = {"n": 0}
    real = pkgutil.resolve_name(writer)

    def nth_fails(*args: Any) -> Any:
        calls["n"] += 1
        return _full() if calls["n"] == failing_call else real(*args)

    monkeypatch.setattr(writer.replace(":", "."), nth_fails)
    out = tmp_path / "out"
    result = run(monkeypatch, out, "1,2,3,4", "--no-charts")
    assert_consistent(out, result, 2)
    assert f"cannot write {out / file}" in result.output


def test_charts_that_do_not_fit_are_one_line_and_keep_the_levels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("harness.render.charts.Figure.savefig", _full)
    out = tmp_path / "out"
    result = run(monkeypatch, out, "1,2")
    assert result.exit_code == 1 and "Traceback" not in result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert f"cannot write the charts in {out}: No space left on device" in error
    assert "2 finished levels are kept" in error
    assert not list(out.glob("*.png"))
    assert len(load_dat(out / "job.dat")) == 2


def test_append_row_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.dat"
    append_row(path, DatRow(8, 1.0, 1.0, 100.0))
    before = path.read_bytes()
    real = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) > 4:  # the first write goes half-way, like a write to a nearly full disk
            return real(fd, data[: len(data) // 2])
        return _full()

    monkeypatch.setattr(datfile.os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        append_row(path, DatRow(16, 123456.78, 0.5, 100.0))
    assert path.read_bytes() == before
