"""harness system: inspect / advice / tune / reset, and the CLI, on a fake sysfs tree under
tmp_path. Nothing here reads or writes the real /sys: every call names its root, and the CLI is
pointed at the fake tree through $MWBENCH_SYSFS_ROOT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import harness.machine.tune
from harness.cli.main import main
from harness.machine.system import (
    ENV_ROOT,
    STATE_FILE,
    advice,
    cpu_ranges,
    idle_note,
    inspect,
)
from harness.machine.tune import SystemTuneError, reset, tune

HALTPOLL = "sys/module/haltpoll/parameters"
CPUS = "sys/devices/system/cpu"
POLL_NS = f"{HALTPOLL}/guest_halt_poll_ns"


def _put(root: Path, path: str, value: str) -> None:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(f"{value}\n")


def _get(root: Path, path: str) -> str:
    return (root / path).read_text().strip()


def vm_tree(root: Path, poll_ns: int = 0, cpus: int = 2) -> Path:
    """This project's Firecracker VM: haltpoll driver and governor, guest_halt_poll_ns=0,
    POLL + haltpoll idle states, no cpufreq."""
    _put(root, f"{CPUS}/cpuidle/current_driver", "haltpoll")
    _put(root, f"{CPUS}/cpuidle/current_governor", "haltpoll")
    for name, value in {
        "guest_halt_poll_ns": str(poll_ns),
        "guest_halt_poll_grow": "2",
        "guest_halt_poll_grow_start": "50000",
        "guest_halt_poll_shrink": "2",
        "guest_halt_poll_allow_shrink": "Y",
    }.items():
        _put(root, f"{HALTPOLL}/{name}", value)
    for cpu in range(cpus):
        for index, (name, latency) in enumerate((("POLL", "0"), ("haltpoll idle", "1"))):
            state = f"{CPUS}/cpu{cpu}/cpuidle/state{index}"
            _put(root, f"{state}/name", name)
            _put(root, f"{state}/latency", latency)
            _put(root, f"{state}/residency", latency)
            _put(root, f"{state}/disable", "0")
    (root / CPUS / "cpufreq").mkdir(exist_ok=True)  # present but empty, as on the VM
    return root


def metal_tree(root: Path, governor: str = "powersave", cpus: int = 4) -> Path:
    """Bare metal: intel_idle with a disabled deep state, cpufreq on every CPU, no haltpoll."""
    _put(root, f"{CPUS}/cpuidle/current_driver", "intel_idle")
    _put(root, f"{CPUS}/cpuidle/current_governor", "menu")
    for cpu in range(cpus):
        _put(root, f"{CPUS}/cpu{cpu}/cpufreq/scaling_governor", governor)
        _put(root, f"{CPUS}/cpu{cpu}/cpufreq/scaling_available_governors", "performance powersave")
        for index, (name, latency, off) in enumerate((("POLL", 0, 0), ("C6", 170, 1))):
            state = f"{CPUS}/cpu{cpu}/cpuidle/state{index}"
            _put(root, f"{state}/name", name)
            _put(root, f"{state}/latency", str(latency))
            _put(root, f"{state}/disable", str(off))
    return root


# ---------------------------------------------------------------------------------------------
# inspect and advice


def test_inspect_the_vm(tmp_path: Path) -> None:
    state = inspect(root=vm_tree(tmp_path))
    assert (state.cpuidle_driver, state.cpuidle_governor) == ("haltpoll", "haltpoll")
    assert state.halt_poll_ns == 0 and state.haltpoll["guest_halt_poll_allow_shrink"] == "Y"
    assert state.haltpoll["guest_halt_poll_grow_start"] == 50000
    assert [c.cpu for c in state.cpus] == [0, 1] and all(c.governor is None for c in state.cpus)
    assert [s.name for s in state.cpus[0].idle_states] == ["POLL", "haltpoll idle"]
    assert state.cpus[0].idle_states[1].latency_us == 1
    assert state.halts_on_idle
    data = state.to_dict()
    assert data["cpuidle"] == {"driver": "haltpoll", "governor": "haltpoll"}
    assert data["haltpoll"]["guest_halt_poll_ns"] == 0
    # Identical CPUs are one group: short on a machine with many CPUs.
    (group,) = data["cpus"]
    assert group["cpus"] == "0-1" and "cpufreq_governor" not in group
    assert group["idle_states"][0] == {
        "name": "POLL", "latency_us": 0, "residency_us": 0, "disabled": False,
    }  # fmt: skip
    json.dumps(data)  # it goes into the results as is


def test_advice_on_the_vm_names_the_cost_and_the_fix(tmp_path: Path) -> None:
    (note,) = advice(inspect(root=vm_tree(tmp_path)))
    assert "guest_halt_poll_ns=0" in note and "+22%" in note and "+6 µs" in note
    assert "harness system tune" in note and "\n" not in note
    line = idle_note(root=tmp_path)
    assert line is not None and line.startswith("note: ") and "harness system tune" in line


def test_polling_or_another_governor_needs_no_advice(tmp_path: Path) -> None:
    assert advice(inspect(root=vm_tree(tmp_path, poll_ns=200000))) == []
    assert idle_note(root=tmp_path) is None
    # With the menu governor, guest_halt_poll_ns is not what decides.
    _put(tmp_path, f"{CPUS}/cpuidle/current_governor", "menu")
    _put(tmp_path, POLL_NS, "0")
    assert idle_note(root=tmp_path) is None


def test_an_empty_tree_is_an_empty_state(tmp_path: Path) -> None:
    state = inspect(root=tmp_path / "nothing")
    assert state.cpuidle_driver is None and state.haltpoll == {} and state.cpus == []
    assert state.to_dict() == {} and advice(state) == [] and not state.halts_on_idle


def test_inspect_bare_metal_with_cpufreq(tmp_path: Path) -> None:
    state = inspect(root=metal_tree(tmp_path))
    assert state.haltpoll == {} and state.halt_poll_ns is None
    assert [c.governor for c in state.cpus] == ["powersave"] * 4
    assert state.cpus[2].idle_states[1].disabled is True
    assert state.cpus[2].idle_states[1].describe() == "C6 170 µs (disabled)"
    (note,) = advice(state)
    assert "powersave on CPU 0-3" in note and "harness system tune" in note
    (group,) = state.to_dict()["cpus"]
    assert group["cpufreq_governor"] == "powersave" and group["cpus"] == "0-3"
    # One CPU set differently is its own group.
    _put(tmp_path, f"{CPUS}/cpu2/cpufreq/scaling_governor", "performance")
    groups = inspect(root=tmp_path).to_dict()["cpus"]
    assert [g["cpus"] for g in groups] == ["0-1,3", "2"]
    assert "CPU 0-1,3" in advice(inspect(root=tmp_path))[0]


def test_cpu_ranges() -> None:
    assert cpu_ranges([]) == "" and cpu_ranges([3]) == "3"
    assert cpu_ranges([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"


# ---------------------------------------------------------------------------------------------
# tune and reset


def test_tune_then_reset_the_vm(tmp_path: Path) -> None:
    root = vm_tree(tmp_path)
    done = tune(root=root)
    assert [(c.path, c.old, c.new) for c in done.changes] == [(POLL_NS, "0", "200000")]
    assert _get(root, POLL_NS) == "200000" and not inspect(root=root).halts_on_idle
    saved = json.loads((root / STATE_FILE).read_text())
    assert saved["original"] == {POLL_NS: "0"} and done.state_file == root / STATE_FILE
    undone = reset(root=root)
    assert [(c.old, c.new) for c in undone.changes] == [("200000", "0")]
    assert _get(root, POLL_NS) == "0" and not (root / STATE_FILE).exists()
    assert "nothing to reset" in reset(root=root).message


def test_tune_twice_keeps_the_first_originals(tmp_path: Path) -> None:
    root = vm_tree(tmp_path)
    tune(root=root, halt_poll_ns=100_000)
    second = tune(root=root, halt_poll_ns=300_000)
    assert [(c.old, c.new) for c in second.changes] == [("100000", "300000")]
    assert json.loads((root / STATE_FILE).read_text())["original"] == {POLL_NS: "0"}
    assert "already tuned" in tune(root=root, halt_poll_ns=300_000).message
    reset(root=root)
    assert _get(root, POLL_NS) == "0"


def test_tune_sets_the_performance_governor_where_available(tmp_path: Path) -> None:
    root = metal_tree(tmp_path)
    _put(root, f"{CPUS}/cpu3/cpufreq/scaling_available_governors", "powersave")
    done = tune(root=root)
    assert sorted(c.path for c in done.changes) == [
        f"{CPUS}/cpu{n}/cpufreq/scaling_governor" for n in range(3)
    ]
    assert [c.governor for c in inspect(root=root).cpus] == ["performance"] * 3 + ["powersave"]
    assert "performance is not available" in advice(inspect(root=root))[0]
    # The idle states are shown, never changed.
    assert _get(root, f"{CPUS}/cpu0/cpuidle/state1/disable") == "1"
    reset(root=root)
    assert [c.governor for c in inspect(root=root).cpus] == ["powersave"] * 4


def test_nothing_to_tune_is_not_an_error(tmp_path: Path) -> None:
    done = tune(root=tmp_path)
    assert done.changes == [] and "nothing to tune" in done.message
    assert not (tmp_path / STATE_FILE).exists()
    assert "already tuned" in tune(root=metal_tree(tmp_path / "m", "performance")).message


def _refuse_writes(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make `path` unwritable, even for root (who ignores file modes)."""
    path.chmod(0o444)
    real = harness.machine.tune._write

    def write(target: Path, value: str) -> None:
        if target == path:
            raise PermissionError(13, "Permission denied", str(target))
        real(target, value)

    monkeypatch.setattr(harness.machine.tune, "_write", write)


def test_a_read_only_file_is_a_clear_error_and_nothing_stays_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = metal_tree(tmp_path)
    blocked = root / CPUS / "cpu2/cpufreq/scaling_governor"
    _refuse_writes(monkeypatch, blocked)
    with pytest.raises(SystemTuneError) as caught:
        tune(root=root)
    message = str(caught.value)
    assert str(blocked) in message and "run as root" in message and "\n" not in message
    # CPUs 0-1 were written, then put back; no state file is left behind.
    assert [c.governor for c in inspect(root=root).cpus] == ["powersave"] * 4
    assert not (root / STATE_FILE).exists()


def test_an_unwritable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    root = vm_tree(tmp_path)
    (root / "var").write_text("not a directory")
    with pytest.raises(SystemTuneError, match=r"mwbench-system\.json.*run as root"):
        tune(root=root)
    assert _get(root, POLL_NS) == "0"


def test_reset_keeps_the_state_file_when_it_cannot_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = vm_tree(tmp_path)
    tune(root=root)
    _refuse_writes(monkeypatch, root / POLL_NS)
    with pytest.raises(SystemTuneError, match="sudo harness system reset"):
        reset(root=root)
    assert (root / STATE_FILE).exists()


def test_a_corrupt_state_file_is_named(tmp_path: Path) -> None:
    root = vm_tree(tmp_path)
    _put(root, STATE_FILE, "{not json")
    with pytest.raises(
        SystemTuneError, match=r"cannot read the saved settings .*mwbench-system\.json"
    ):
        reset(root=root)


# ---------------------------------------------------------------------------------------------
# the CLI, on the fake tree through $MWBENCH_SYSFS_ROOT


def _cli(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["system", *args], env={ENV_ROOT: str(root)})
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_cli_show_tune_show_reset(tmp_path: Path) -> None:
    root = vm_tree(tmp_path)
    code, out = _cli(root, "show")
    assert code == 0, out
    assert "haltpoll" in out and "guest_halt_poll_ns" in out and "CPU 0-1 idle states" in out
    assert "+22%" in out and "harness system tune" in out
    code, out = _cli(root, "tune", "--halt-poll-ns", "150000")
    assert code == 0, out
    assert f"{POLL_NS}: 0 -> 150000" in out and "harness system reset" in out
    code, out = _cli(root, "show")
    assert "150000" in out and "advice: none" in out and "originals are saved" in out
    code, out = _cli(root, "reset")
    assert code == 0 and f"{POLL_NS}: 150000 -> 0" in out
    assert _get(root, POLL_NS) == "0"
    code, out = _cli(root, "reset")
    assert code == 0 and "nothing to reset" in out


def test_cli_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = vm_tree(tmp_path)
    _refuse_writes(monkeypatch, root / POLL_NS)
    code, out = _cli(root, "tune")
    assert code == 1
    assert out.startswith("Error: ") and out.count("\n") == 1 and "run as root" in out
    code, out = _cli(root, "tune", "--halt-poll-ns", "0")
    assert code == 2 and "--halt-poll-ns" in out


def test_cli_on_a_tree_with_nothing(tmp_path: Path) -> None:
    code, out = _cli(tmp_path, "show")
    assert code == 0 and "advice: none" in out
    code, out = _cli(tmp_path, "tune")
    assert code == 0 and "nothing to tune" in out


def test_the_environment_records_the_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.experiments.sweep.run import environment

    monkeypatch.setenv(ENV_ROOT, str(vm_tree(tmp_path)))
    env = environment(wrk="wrk", cpus=(1,), fd_limit=1024)
    assert env["system"]["haltpoll"]["guest_halt_poll_ns"] == 0
    assert env["system"]["cpuidle"]["driver"] == "haltpoll"


# ---------------------------------------------------------------------------------------------
# compare's note and calibrate's hint


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("poll_ns", "noted"), [(0, True), (200000, False)])
def test_compare_notes_idle_halts_at_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poll_ns: int, noted: bool
) -> None:
    from harness.experiments.compare.run import compare

    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    monkeypatch.setenv(ENV_ROOT, str(vm_tree(tmp_path / "root", poll_ns=poll_ns)))
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("compare:"):
            return
        raise _Stop  # the first line after the notes: no server is started

    monkeypatch.setattr(
        "harness.experiments.compare.run.measure_ceiling", lambda **kw: echo("ceiling")
    )
    with pytest.raises(_Stop):
        compare(targets=["starlette"], sets=[()], out_dir=tmp_path / "out", echo=echo, tune=False)
    assert lines[0].startswith("compare: ")
    assert (lines[1].startswith("note: idle CPUs halt") and "+22%" in lines[1]) is noted


@pytest.mark.parametrize(("poll_ns", "hinted"), [(0, True), (200000, False)])
def test_calibrate_failure_points_to_system_tune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poll_ns: int, hinted: bool
) -> None:
    import harness.experiments.calibrate.run
    from harness.stats.intervals import Estimate
    from tests.test_calibrate import GOOD, _fake_compare

    above = {**GOOD, "spin:20us": (GOOD["spin:20us"][0], Estimate(26.0, 25.0, 27.0, 3))}
    monkeypatch.setattr(harness.experiments.calibrate.run, "compare", _fake_compare(above))
    monkeypatch.setenv(ENV_ROOT, str(vm_tree(tmp_path / "root", poll_ns=poll_ns)))
    result = CliRunner().invoke(
        main, ["calibrate", "-t", "starlette", "-d", str(tmp_path / "out"), "--no-charts"]
    )
    assert result.exit_code == 1
    assert "Every miss is above its known cost" in result.output
    assert ("`harness system tune` (as root) and calibrate again" in result.output) is hinted


# ---------------------------------------------------------------------------------------------
# tuned for the run: compare measures right by default, and puts the machine back


def test_a_run_is_tuned_and_the_machine_put_back_however_it_ends(tmp_path: Path) -> None:
    from harness.machine.tune import tuned_for_run

    root = vm_tree(tmp_path / "root", poll_ns=0)
    said: list[str] = []
    with tuned_for_run(root=root, echo=said.append) as tuned:
        assert tuned is not None and _get(root, POLL_NS) == "200000"
    assert _get(root, POLL_NS) == "0" and not (root / STATE_FILE).exists()
    assert said and "tuned for this run, restored at exit" in said[0]
    with pytest.raises(KeyboardInterrupt), tuned_for_run(root=root, echo=said.append):
        raise KeyboardInterrupt  # Ctrl-C mid-run
    assert _get(root, POLL_NS) == "0"
    with tuned_for_run(root=root, enabled=False, echo=said.append) as tuned:
        assert tuned is None and _get(root, POLL_NS) == "0"


def test_someone_elses_tune_is_left_alone(tmp_path: Path) -> None:
    from harness.machine.tune import tuned_for_run

    root = vm_tree(tmp_path / "root", poll_ns=0)
    tune(root=root)  # the user's own `harness system tune`
    with tuned_for_run(root=root, echo=lambda line: None) as tuned:
        assert tuned is None
    assert _get(root, POLL_NS) == "200000" and (root / STATE_FILE).exists()  # still theirs


def test_compare_tunes_for_its_run_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = vm_tree(tmp_path / "root", poll_ns=0)
    monkeypatch.setenv(ENV_ROOT, str(root))
    result = CliRunner().invoke(
        main,
        ["compare", "-t", "raw-asgi", "-m", "none", "--no-baseline", "--no-ceiling",
         "--no-charts", "-c", "8", "--duration", "1s", "--warmup", "0", "-r", "1",
         "-d", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "tuned for this run" in result.output and "idle CPUs halt at once" not in result.output
    assert _get(root, POLL_NS) == "0"
    settings = json.loads((tmp_path / "out" / "compare.json").read_text())["settings"]
    assert settings["tuned_for_run"] and "guest_halt_poll_ns" in settings["tuned_for_run"][0]
