"""`harness system tune|reset`: set what harness.machine.system found to distort per-request
costs, and put the original values back (the first tune's originals are kept in a state file).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import RunError
from harness.machine.system import (
    CPU_DIR,
    DEFAULT_HALT_POLL_NS,
    HALT_POLL_NS,
    HALTPOLL_DIR,
    PERFORMANCE,
    STATE_FILE,
    SystemState,
    default_root,
    inspect,
    read_value,
)


class SystemTuneError(RunError):
    """A setting could not be saved, changed or restored (not root, read-only, bad state file)."""


@dataclass(frozen=True)
class Change:
    """One file set from `old` to `new` (paths relative to the root)."""

    path: str
    old: str
    new: str

    def describe(self, root: Path = Path("/")) -> str:
        return f"{Path(root) / self.path}: {self.old} -> {self.new}"


@dataclass
class Outcome:
    """What tune() or reset() did: the changes, the state file, and a one-line summary."""

    changes: list[Change]
    state_file: Path
    message: str


def state_path(root: Path, state_file: Path | None = None) -> Path:
    return Path(state_file) if state_file is not None else Path(root) / STATE_FILE


def _load_saved(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
        original = data["original"]
        if not isinstance(original, dict):
            raise TypeError("original is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemTuneError(f"cannot read the saved settings {path}: {exc}") from None
    return {str(k): str(v) for k, v in original.items()}


def _save(path: Path, original: dict[str, str]) -> None:
    data = {
        "kind": "mwbench-system",
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "original": original,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise SystemTuneError(
            f"cannot save the original settings to {path}: {exc.strerror or exc}; "
            "run as root (sudo harness system tune)"
        ) from None


def _write(path: Path, value: str) -> None:
    # One write(2) of the whole value, as `echo VALUE > FILE` does: sysfs takes one store.
    with open(path, "w") as f:
        f.write(f"{value}\n")


def _apply(root: Path, changes: list[Change], verb: str) -> list[Change]:
    """Write each change; on the first failure put back what was written and raise."""
    done: list[Change] = []
    for change in changes:
        try:
            _write(root / change.path, change.new)
        except OSError as exc:
            for undo in reversed(done):
                with contextlib.suppress(OSError):
                    _write(root / undo.path, undo.old)
            raise SystemTuneError(
                f"cannot write {root / change.path}: {exc.strerror or exc}; "
                f"run as root (sudo harness system {verb})"
            ) from None
        done.append(change)
    return done


def plan(state: SystemState, *, halt_poll_ns: int = DEFAULT_HALT_POLL_NS) -> list[Change]:
    """The changes tune() would make: haltpoll's poll time, and cpufreq's performance governor
    on each CPU that has it available."""
    changes = []
    current = state.haltpoll.get(HALT_POLL_NS)
    if current is not None and current != halt_poll_ns:
        changes.append(Change(f"{HALTPOLL_DIR}/{HALT_POLL_NS}", str(current), str(halt_poll_ns)))
    for cpu in state.cpus:
        if (
            cpu.governor is not None
            and cpu.governor != PERFORMANCE
            and PERFORMANCE in cpu.available_governors
        ):
            path = f"{CPU_DIR}/cpu{cpu.cpu}/cpufreq/scaling_governor"
            changes.append(Change(path, cpu.governor, PERFORMANCE))
    return changes


def tune(
    *,
    root: Path = Path("/"),
    halt_poll_ns: int = DEFAULT_HALT_POLL_NS,
    state_file: Path | None = None,
) -> Outcome:
    """Make idle CPUs poll `halt_poll_ns` before halting (haltpoll) and set the cpufreq
    governor to performance, where present. The original values are saved to the state file
    first (a second tune keeps the first originals), so reset() can restore them.

    Raises SystemTuneError (not root, read-only file, bad state file) after putting back
    whatever it had already written."""
    if halt_poll_ns < 1:
        raise ValueError(f"the halt-poll time must be at least 1 ns: {halt_poll_ns}")
    root = Path(root)
    saved_path = state_path(root, state_file)
    state = inspect(root=root)
    changes = plan(state, halt_poll_ns=halt_poll_ns)
    if not changes:
        tunable = state.halt_poll_ns is not None or any(c.governor for c in state.cpus)
        what = "already tuned" if tunable else "neither haltpoll nor cpufreq is present"
        return Outcome([], saved_path, f"nothing to tune: {what}")
    existed = saved_path.exists()
    original = _load_saved(saved_path) if existed else {}
    for change in changes:
        original.setdefault(change.path, change.old)  # the first tune's value wins
    _save(saved_path, original)
    try:
        done = _apply(root, changes, "tune")
    except SystemTuneError:
        if not existed:
            saved_path.unlink(missing_ok=True)
        raise
    return Outcome(
        done,
        saved_path,
        f"saved the original settings to {saved_path}; `harness system reset` restores them",
    )


def reset(*, root: Path = Path("/"), state_file: Path | None = None) -> Outcome:
    """Restore what tune() saved and delete the state file. Without a state file there is
    nothing to reset (not an error). Raises SystemTuneError when a value cannot be written
    (the state file is then kept)."""
    root = Path(root)
    saved_path = state_path(root, state_file)
    if not saved_path.exists():
        return Outcome([], saved_path, f"nothing to reset: no saved settings at {saved_path}")
    original = _load_saved(saved_path)
    changes, gone = [], []
    for path, old in original.items():
        current = read_value(root / path)
        if current is None:
            gone.append(path)
        elif current != old:
            changes.append(Change(path, current, old))
    done = _apply(root, changes, "reset")
    try:
        saved_path.unlink()
    except OSError as exc:
        raise SystemTuneError(
            f"restored the settings but cannot delete {saved_path}: {exc.strerror or exc}"
        ) from None
    message = f"restored the original settings and deleted {saved_path}"
    if not done:
        message = f"the settings were already the originals; deleted {saved_path}"
    if gone:
        message += f" (no longer present, skipped: {', '.join(gone)})"
    return Outcome(done, saved_path, message)


@contextlib.contextmanager
def tuned_for_run(
    *, enabled: bool = True, root: Path | None = None, echo: Callable[[str], None] = print
) -> Iterator[Outcome | None]:
    """Tune the machine while the block runs (as `harness system tune` does), and put it back
    however the block ends: so that a compare run as the README says measures right without the
    user knowing about idle states. Nothing happens when it is off, when the machine needs no
    tuning, when someone's `harness system tune` is in force (its state file exists: theirs to
    reset), or when this process may not write the settings (it says so). A harness killed
    outright leaves the state file, so `harness system reset` still restores."""
    root = default_root() if root is None else Path(root)
    saved = state_path(root)
    if not enabled or saved.exists() or not plan(inspect(root=root)):
        yield None
        return
    try:
        outcome = tune(root=root)
    except SystemTuneError as exc:
        echo(
            f"note: cannot tune this machine for the run ({exc}); overheads on event-loop "
            "servers will read high"
        )
        yield None
        return
    shown = ", ".join(f"{Path(c.path).name} {c.old} -> {c.new}" for c in outcome.changes)
    echo(f"tuned for this run, restored at exit: {shown} (--no-tune to measure as it is)")
    try:
        yield outcome
    finally:
        with contextlib.suppress(SystemTuneError):
            reset(root=root)
