"""`harness profile`: where the CPU goes under load (the source document's `go tool pprof` step).

`profile()` starts the target with one worker, pinned away from wrk, drives it with wrk, samples
the worker with py-spy while the load is steady, stops everything however it ends, and reads the
samples three ways: pprof's `top -cum`, a breakdown by layer, and a flame graph.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.experiments.profile.attribution import (
    LayerShare,
    attribute,
    by_kind,
    format_layers,
)
from harness.experiments.profile.collapsed import Stacks, read_collapsed, total_samples
from harness.experiments.profile.pyspy import (
    ProfileError,
    PySpyError,
    Recorder,
    Recording,
    check_attach,
    record_command,
    resolve_py_spy,
)
from harness.experiments.profile.reading import rules_for, short_files
from harness.experiments.profile.top import TopRow, format_top, top_cum
from harness.experiments.profile.waiting import format_waiting, split_waiting, waiting_leaves
from harness.load.files import versioned
from harness.load.limits import raise_fd_limit
from harness.load.settings import LoadSettings
from harness.load.wrk import WrkLoad, resolve_wrk, run_wrk
from harness.load.wrk_output import WrkResult
from harness.machine.cpus import CpuPlan
from harness.serving.servers import RunningServer, running
from harness.serving.settings import DEFAULT_SERVE, ServeSettings
from middleware.stack import stack_file_name, stack_name
from targets.server_table import Server, ServerChoiceError
from targets.table import Target, get_target

DEFAULT_OUT_DIR = Path("_output/profile")
DEFAULT_RATE = 250
DEFAULT_DURATION = 10.0
DEFAULT_CONNECTIONS = 64
DEFAULT_LEAD_IN = 1.0
# wrk runs this much longer than py-spy samples, so that py-spy's start-up delay never leaves
# its last samples without load.
_TAIL = 1.0

SCHEMA, VERSION = "profile", 1  # NAME.json of harness profile


@dataclass
class ProfileResult:
    target: str
    stack: tuple[str, ...]
    out_dir: Path
    stacks: Stacks
    top: list[TopRow]
    layers: list[LayerShare]
    wrk: WrkResult
    recording: Recording
    settings: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    # The samples of threads that only wait (profile.waiting), left out of `stacks`
    # and of every share.
    waiting: Stacks = field(default_factory=Counter)

    @property
    def samples(self) -> int:
        """The samples read: the threads at work (the waiting ones are left out)."""
        return total_samples(self.stacks)

    def to_dict(self) -> dict[str, Any]:
        return versioned(
            SCHEMA,
            VERSION,
            {
                "target": self.target,
                "stack": list(self.stack),
                "stack_name": stack_name(self.stack),
                "settings": self.settings,
                "samples": self.samples,
                "py_spy": {
                    "command": self.recording.command,
                    "reported_samples": self.recording.samples,
                    "errors": self.recording.errors,
                },
                "wrk": self.wrk.to_dict(),
                "top": [row.to_dict() for row in self.top],
                "layers": [share.to_dict() for share in self.layers],
                "by_kind": by_kind(self.layers),
                "waiting": {
                    "samples": total_samples(self.waiting),
                    "leaves": dict(waiting_leaves(self.waiting)),
                },
                "files": {name: str(path) for name, path in self.files.items()},
            },
        )

    def report(self, width: int | None = None) -> str:
        waiting = format_waiting(self.waiting, self.samples + total_samples(self.waiting))
        return "\n\n".join(
            [
                format_top(self.top, self.samples, width=width),
                format_layers(self.layers, width=width),
                *([waiting] if waiting else []),
            ]
        )


def _sample_in_background(
    recorder: Recorder, lead_in: float, timeout: float, stop: threading.Event, lock: threading.Lock
) -> tuple[threading.Thread, list[Recording | BaseException]]:
    """Start py-spy after `lead_in` (unless stopped first) and wait for it, in a thread, so the
    main thread can run wrk; the outcome (a Recording or the error) lands in the returned list."""
    outcome: list[Recording | BaseException] = []

    def run() -> None:
        try:
            if stop.wait(lead_in):
                return
            with lock:  # stop() runs under the lock too: py-spy is started only if not stopping
                if stop.is_set():
                    return
                recorder.start()
            outcome.append(recorder.wait(timeout))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="py-spy", daemon=True)
    thread.start()
    return thread, outcome


PROFILE_LOAD = LoadSettings(
    levels=(DEFAULT_CONNECTIONS,), duration=DEFAULT_DURATION, warmup=0.0, timeout=10.0
)


@dataclass(frozen=True)
class ProfilePlan:
    """A profile checked and resolved: what is served and how, the load, py-spy's settings and
    the files. `load.duration` is how long py-spy samples; wrk runs the lead-in before it."""

    target: Target
    stack: tuple[str, ...]
    serve: ServeSettings
    load: LoadSettings
    serving: Server
    wrk: str
    py_spy: str
    out_dir: Path
    rate: int = DEFAULT_RATE
    top: int = 30
    nonblocking: bool = False
    gil: bool = False
    lead_in: float = DEFAULT_LEAD_IN

    @property
    def name(self) -> str:
        name = f"{self.target.name}-{stack_file_name(self.stack, self.target.layers)}"
        # Beside the same stack's profile on another server.
        return f"{self.serving.name}-{name}" if self.serve.server is not None else name

    @property
    def files(self) -> dict[str, Path]:
        found = {
            "collapsed": self.out_dir / f"{self.name}.collapsed.txt",
            "flamegraph": self.out_dir / f"{self.name}.svg",
            "json": self.out_dir / f"{self.name}.json",
            "log": self.out_dir / f"{self.name}.server.log",
        }
        if self.serve.log_output != f"file:{found['log'].resolve()}":
            del found["log"]
        return found

    def settings(self) -> dict[str, Any]:
        load, serve = self.load, self.serve
        return {
            "connections": load.levels[0],
            "threads": len(load.cpus) if load.cpus else 1,
            "duration_s": load.duration,
            "lead_in_s": self.lead_in,
            "rate_hz": self.rate,
            "nonblocking": self.nonblocking,
            "gil_only": self.gil,
            "path": load.asked.path,
            "request": load.asked.to_dict(),
            "pinning": CpuPlan(serve.cpus, load.cpus).describe(),
            "server_cpus": list(serve.cpus) if serve.cpus else None,
            "load_cpus": list(load.cpus) if load.cpus else None,
            "log_output": serve.log_output,
            "server": self.serving.name,
            "worker_class": self.serving.worker_class,
            "env": serve.to_dict()["env"],  # a variant's variables, secrets redacted
        }


@dataclass(frozen=True, kw_only=True)
class ProfileRequest:
    """What a profile is asked for, as given: built once (the CLI builds it from its options)
    and taken whole by plan_profile, which checks and resolves it. What each field means:
    harness.experiments.profile.run.profile."""

    target: str | Target
    stack: tuple[str, ...] = ()
    serve: ServeSettings = DEFAULT_SERVE
    load: LoadSettings = PROFILE_LOAD
    rate: int = DEFAULT_RATE
    out_dir: Path | str = DEFAULT_OUT_DIR
    top: int = 30
    py_spy: str | None = None
    nonblocking: bool = False
    gil: bool | None = None
    lead_in: float = DEFAULT_LEAD_IN


def plan_profile(request: ProfileRequest) -> ProfilePlan:
    """Check and resolve a profile: UsageError, WrkError or PySpyError before anything runs."""
    target, serve, load, rate = request.target, request.serve, request.load, request.rate
    spec = get_target(target) if isinstance(target, str) else target
    if not load.duration > 0:
        raise UsageError(f"duration must be positive: {load.duration:g}s", param="duration")
    if rate < 1:
        raise UsageError(f"rate must be at least 1 Hz: {rate}", param="rate")
    try:
        serving = spec.server_for(serve.server, serve.worker_class)
    except ServerChoiceError as exc:
        raise UsageError(str(exc), param="server") from None
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = ProfilePlan(
        spec,
        request.stack,
        serve.replace(workers=1),
        load.replace(duration=float(math.ceil(load.duration))),  # py-spy samples whole seconds
        serving,
        resolve_wrk(load.wrk),
        resolve_py_spy(request.py_spy),
        out,
        rate,
        request.top,
        request.nonblocking,
        # py-spy takes a thread blocked on a queue or an event for a busy one, so gthread's idle
        # pool (or granian's waiting main thread) would swamp the profile: there, sample only
        # the thread holding the GIL.
        serving.profile_gil_only if request.gil is None else request.gil,
        request.lead_in,
    )
    if serve.log_output is None:
        # The benchmarks' default: middleware logs go to a real file, as they would in production.
        log = out / f"{plan.name}.server.log"
        plan = dataclasses.replace(
            plan, serve=plan.serve.replace(log_output=f"file:{log.resolve()}")
        )
    return plan


def _under_load(plan: ProfilePlan, started: RunningServer, pid: int) -> tuple[WrkResult, list[Any]]:
    """wrk for the lead-in, py-spy's seconds and a tail, py-spy sampling `pid` in a thread
    after the lead-in: what wrk measured, and py-spy's outcome (a Recording or its error)."""
    collapsed = plan.files["collapsed"]
    command = record_command(
        plan.py_spy,
        pid,
        collapsed,
        duration=plan.load.duration,
        rate=plan.rate,
        nonblocking=plan.nonblocking,
        gil=plan.gil,
    )
    recorder = Recorder(command, pid, collapsed)
    stop, lock = threading.Event(), threading.Lock()
    duration = plan.load.duration
    thread, outcome = _sample_in_background(recorder, plan.lead_in, duration + 30, stop, lock)
    script = None
    if not plan.load.asked.plain:
        script = plan.out_dir / f"{plan.name}.lua"
        script.write_text(plan.load.asked.lua(), encoding="utf-8")
    try:
        load = run_wrk(
            started.url + plan.load.asked.path,
            WrkLoad(
                connections=plan.load.levels[0],
                threads=len(plan.load.cpus) if plan.load.cpus else 1,
                duration=plan.lead_in + duration + _TAIL,
                timeout=plan.load.timeout,
                script=str(script) if script else None,
                env=plan.load.asked.secrets(),
            ),
            wrk=plan.wrk,
            cpus=plan.load.cpus,
        )
        thread.join(duration + 35)
    finally:
        stop.set()
        with lock:
            recorder.stop()
        thread.join(5)
    return load, outcome


def run_profile(
    plan: ProfilePlan, *, echo: Callable[[str], None] = print
) -> tuple[Recording, WrkResult]:
    """Serve, load and sample as the plan says; nothing is left running however it ends.
    ProfileError when the samples would not be of a server under load."""
    for stale in (plan.files["collapsed"], plan.files.get("log")):
        if stale is not None:
            stale.unlink(missing_ok=True)
    raise_fd_limit()
    with running(plan.target, plan.serve, stack=plan.stack, ready_path=plan.load.asked.path) as up:
        if plan.serving.note:
            echo(plan.serving.note)
        workers = up.worker_pids()
        if not workers:
            raise ProfileError(f"{plan.target.name} has no worker process to profile")
        pid = workers[0]
        check_attach(pid, py_spy=plan.py_spy)  # a ptrace problem, said before any load
        echo(
            f"profiling {plan.name}: pid {pid}, {plan.settings()['pinning']}; wrk "
            f"-c{plan.load.levels[0]} for {plan.lead_in:g}s + {plan.load.duration:g}s, py-spy at "
            f"{plan.rate} Hz for the last {plan.load.duration:g}s"
        )
        load, outcome = _under_load(plan, up, pid)
        if died := _died_mid_profile(up, pid, plan.files["collapsed"]):
            # py-spy keeps what it sampled before its target went, and wrk counts the errors
            # after it as answers of a kind: neither says the profile is of a dead server.
            raise ProfileError(died)
    if not outcome:
        raise ProfileError("py-spy did not report (it was stopped before it finished)")
    recorded = outcome[0]
    if isinstance(recorded, BaseException):
        raise recorded
    if not load.is_ok:
        raise ProfileError(f"wrk failed, so the profile is not under load: {load.reason}")
    return recorded, load


def summarize_profile(plan: ProfilePlan, recorded: Recording, load: WrkResult) -> ProfileResult:
    """The samples read three ways: top -cum, a breakdown by layer, the stacks themselves; the
    samples of threads that only wait are left out of all three."""
    rules = rules_for(plan.target, plan.stack)
    recorded_stacks = short_files(read_collapsed(recorded.path), rules.app_root)
    if total_samples(recorded_stacks) == 0:
        raise ProfileError(f"py-spy took no samples of {plan.name}: was the worker busy?")
    stacks, waiting = split_waiting(recorded_stacks)
    if total_samples(stacks) == 0:
        raise ProfileError(
            f"every sample py-spy took of {plan.name} was of a thread that waits: was the worker "
            "busy?"
        )
    return ProfileResult(
        target=plan.target.name,
        stack=plan.stack,
        out_dir=plan.out_dir,
        stacks=stacks,
        waiting=waiting,
        top=top_cum(stacks, plan.top),
        layers=attribute(stacks, plan.stack, rules),
        wrk=load,
        recording=recorded,
        settings=plan.settings(),
        files=plan.files,
    )


def profile(
    request: ProfileRequest | None = None,
    /,
    *,
    echo: Callable[[str], None] = print,
    **fields: Any,
) -> ProfileResult:
    """Profile `target` with `stack` under wrk load (harness.experiments.profile.render writes
    NAME.collapsed.txt's reading: NAME.svg and NAME.json; NAME = target-stack). `load` is what
    wrk sends, with how many connections (`levels[0]`) and for how long py-spy samples
    (`duration`); a user's app (harness.serving.apps.target_for) has its own layers attributed
    by name; `serve.server` (default: the target's) is what serves it, with one worker. Without
    a request, its fields are given as keywords: `profile(target="flask", stack=("all",))`.

    In steps: plan_profile, run_profile, summarize_profile. Raises ProfileError (its PySpyError
    and PtracePermissionError when py-spy may not attach), WrkError, ServerError or UsageError,
    with nothing left running."""
    if request is None:
        request = ProfileRequest(**fields)
    elif fields:
        raise TypeError(f"profile() takes a request or its fields, not both: {sorted(fields)}")
    plan = plan_profile(request)
    return summarize_profile(plan, *run_profile(plan, echo=echo))


def _died_mid_profile(server: RunningServer, pid: int, samples: Path) -> str | None:
    """Why the samples are not of a server under load, if its master or the sampled worker
    exited while wrk and py-spy ran; the message says where the samples until then are."""
    if server.alive() and pid in server.worker_pids():
        return None
    name = server.config.target.name
    if server.alive():
        what = f"{name}'s worker (pid {pid}, the one sampled) exited"
    else:
        what = f"{name} exited with code {server.process.returncode}"
    tail = server.stderr_tail(3).replace("\n", " | ")
    kept = f"; py-spy's samples until then are in {samples}" if samples.exists() else ""
    return f"{what} mid-profile, so the samples are not of a server under load{kept}" + (
        f"; its stderr ends with: {tail}" if tail else ""
    )


__all__ = [
    "DEFAULT_OUT_DIR",
    "PROFILE_LOAD",
    "ProfileError",
    "ProfilePlan",
    "ProfileRequest",
    "ProfileResult",
    "PySpyError",
    "plan_profile",
    "profile",
    "run_profile",
    "summarize_profile",
]
