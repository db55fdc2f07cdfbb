"""The harness's scratch directory: its own while it lives, swept by the next once it is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from harness.machine.scratch import scratch_directory, sweep_the_dead

ROOT = Path(__file__).resolve().parents[1]
HOLD = "from harness.machine.scratch import scratch_directory as s; print(s(), flush=True); input()"


def _holder(tmp: Path) -> tuple[subprocess.Popen[str], Path]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD], cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    made = Path(holder.stdout.readline().strip())
    assert made.parent == tmp and made.is_dir()
    return holder, made


def test_a_killed_harness_s_directory_is_swept_and_a_live_one_s_is_not(tmp_path: Path) -> None:
    living, kept = _holder(tmp_path)
    killed, lost = _holder(tmp_path)
    (lost / "links").mkdir()  # what it held is swept with it
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    not_ours = [tmp_path / "mwbench-raw-asgi-x.log", tmp_path / "mwbench-unlocked"]
    not_ours[0].write_text("a file of the same prefix")
    not_ours[1].mkdir()
    try:
        assert sweep_the_dead(str(tmp_path)) == [str(lost)]
        assert not lost.exists() and kept.is_dir() and all(p.exists() for p in not_ours)
    finally:
        living.communicate("\n", timeout=10)  # its exit hook removes its own
    assert living.returncode == 0 and not kept.exists()


def test_one_directory_a_process() -> None:
    assert scratch_directory() == scratch_directory()
    assert Path(scratch_directory(), ".alive").is_file()
