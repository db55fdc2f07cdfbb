"""`harness profile`: where the CPU goes under load (the source document's `go tool pprof` step).

`profile()` starts the target with one worker, pinned away from wrk, drives it with wrk, samples
the worker with py-spy while the load is steady, stops everything however it ends, and reads the
samples three ways: pprof's `top -cum`, a breakdown by layer, and a flame graph.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.limits import raise_fd_limit
from harness.load.request import Request
from harness.load.wrk import resolve_wrk, run_wrk
from harness.load.wrk_output import WrkResult
from harness.machine.cpus import plan
from harness.profiling.attribution import (
    DEFAULT_RULES,
    LayerShare,
    Rules,
    attribute,
    by_kind,
    format_layers,
)
from harness.profiling.collapsed import Frame, Stacks, read_collapsed, total_samples
from harness.profiling.flamegraph import render_svg
from harness.profiling.pyspy import (
    ProfileError,
    PySpyError,
    Recorder,
    Recording,
    check_attach,
    record_command,
    resolve_py_spy,
)
from harness.profiling.top import TopRow, format_top, top_cum
from harness.serving.apps import describe_app
from harness.serving.servers import RunningServer, running
from harness.serving.userapp.spec import AppLoadError, AppSpec
from middleware.stack import stack_file_name, stack_name
from targets.table import Target, get_target

DEFAULT_OUT_DIR = Path("_output/profile")
DEFAULT_RATE = 250
DEFAULT_DURATION = 10.0
DEFAULT_CONNECTIONS = 64
DEFAULT_LEAD_IN = 1.0
# wrk runs this much longer than py-spy samples, so that py-spy's start-up delay never leaves
# its last samples without load.
_TAIL = 1.0


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

    @property
    def samples(self) -> int:
        return total_samples(self.stacks)

    def to_dict(self) -> dict[str, Any]:
        return {
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
            "files": {name: str(path) for name, path in self.files.items()},
        }

    def report(self, width: int | None = None) -> str:
        return "\n\n".join(
            [
                format_top(self.top, self.samples, width=width),
                format_layers(self.layers, width=width),
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


def profile(
    *,
    target: str | Target,
    stack: tuple[str, ...] = (),
    request: Request | None = None,
    connections: int = DEFAULT_CONNECTIONS,
    worker_class: str | None = None,
    server: str | None = None,
    duration: float = DEFAULT_DURATION,
    rate: int = DEFAULT_RATE,
    out_dir: Path = DEFAULT_OUT_DIR,
    top: int = 30,
    wrk: str | None = None,
    py_spy: str | None = None,
    pin: bool = True,
    nonblocking: bool = False,
    gil: bool | None = None,
    lead_in: float = DEFAULT_LEAD_IN,
    timeout: float = 10.0,
    log_output: str | None = None,
    echo: Callable[[str], None] = print,
) -> ProfileResult:
    """Profile `target` with `stack` under wrk load and write NAME.collapsed.txt, NAME.svg and
    NAME.json (NAME = target-stack) in `out_dir`. `request` (default GET /healthz) is what wrk
    sends; a user's app (harness.serving.apps.target_for) has its own layers attributed by name.
    `server` (targets.server_table; default: the target's) is what serves it.
    Raises ProfileError (its PySpyError and
    PtracePermissionError when py-spy may not attach), WrkError or ServerError, with nothing
    left running."""
    spec = get_target(target) if isinstance(target, str) else target
    asked = request or Request()
    path = asked.path
    if not duration > 0:
        raise ProfileError(f"--duration must be positive: {duration:g}s")
    duration = float(math.ceil(duration))  # py-spy samples whole seconds
    if rate < 1:
        raise ProfileError(f"--rate must be at least 1 Hz: {rate}")
    serving = spec.server_for(server, worker_class)  # ServerChoiceError before anything runs
    wrk_path = resolve_wrk(wrk)
    py_spy_path = resolve_py_spy(py_spy)
    raise_fd_limit()
    cpus = plan(pin)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{spec.name}-{stack_file_name(stack, spec.layers)}"
    if server is not None:
        name = f"{serving.name}-{name}"  # beside the same stack's profile on another server
    files = {
        "collapsed": out_dir / f"{name}.collapsed.txt",
        "flamegraph": out_dir / f"{name}.svg",
        "json": out_dir / f"{name}.json",
        "log": out_dir / f"{name}.server.log",
    }
    for stale in (files["collapsed"], files["log"]):
        stale.unlink(missing_ok=True)
    if log_output is None:
        # The benchmarks' default: middleware logs go to a real file, as they would in production.
        log_output = f"file:{files['log'].resolve()}"
    else:
        del files["log"]
    threads = len(cpus.load) if cpus.load else 1
    if gil is None:
        # py-spy takes a thread blocked on a queue or an event for a busy one, so gthread's idle
        # pool (or granian's waiting main thread) would swamp the profile: there, sample only
        # the thread holding the GIL.
        gil = serving.profile_gil_only
    settings: dict[str, Any] = {
        "connections": connections,
        "threads": threads,
        "duration_s": duration,
        "lead_in_s": lead_in,
        "rate_hz": rate,
        "nonblocking": nonblocking,
        "gil_only": gil,
        "path": path,
        "request": asked.to_dict(),
        "pinning": cpus.describe(),
        "server_cpus": list(cpus.server) if cpus.server else None,
        "load_cpus": list(cpus.load) if cpus.load else None,
        "log_output": log_output,
        "server": serving.name,
        "worker_class": serving.worker_class,
    }

    with running(
        spec,
        stack=stack,
        workers=1,
        worker_class=worker_class,
        server=server,
        cpus=cpus.server,
        log_output=log_output,
        ready_path=path,
    ) as started:
        if serving.note:
            echo(serving.note)
        workers = started.worker_pids()
        if not workers:
            raise ProfileError(f"{spec.name} has no worker process to profile")
        pid = workers[0]
        check_attach(pid, py_spy=py_spy_path)  # a ptrace problem, said before any load
        echo(
            f"profiling {name}: pid {pid}, {cpus.describe()}; wrk -c{connections} for "
            f"{lead_in:g}s + {duration:g}s, py-spy at {rate} Hz for the last {duration:g}s"
        )
        command = record_command(
            py_spy_path, pid, files["collapsed"], duration=duration, rate=rate,
            nonblocking=nonblocking,
            gil=gil,
        )  # fmt: skip
        recorder = Recorder(command, pid, files["collapsed"])
        stop, lock = threading.Event(), threading.Lock()
        thread, outcome = _sample_in_background(recorder, lead_in, duration + 30, stop, lock)
        script = None
        if not asked.plain:
            script = out_dir / f"{name}.lua"
            script.write_text(asked.lua(), encoding="utf-8")
        try:
            load = run_wrk(
                started.url + path,
                connections=connections,
                threads=threads,
                duration=lead_in + duration + _TAIL,
                timeout=timeout,
                wrk=wrk_path,
                cpus=cpus.load,
                script=str(script) if script else None,
            )
            thread.join(duration + 35)
        finally:
            stop.set()
            with lock:
                recorder.stop()
            thread.join(5)
        if died := _died_mid_profile(started, pid, files["collapsed"]):
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
    stacks = read_collapsed(recorded.path)
    if total_samples(stacks) == 0:
        raise ProfileError(f"py-spy took no samples of pid {pid}: was the worker busy?")

    result = ProfileResult(
        target=spec.name,
        stack=stack,
        out_dir=out_dir,
        stacks=stacks,
        top=top_cum(stacks, top),
        layers=attribute(stacks, stack, rules_for(spec, stack)),
        wrk=load,
        recording=recorded,
        settings=settings,
        files=files,
    )
    write_outputs(result)
    return result


def rules_for(target: Target, stack: tuple[str, ...]) -> Rules:
    """The attribution tables; a user's app adds the layers of `stack`, with the code they
    inherit (described again: the Target keeps only their names), and its own code."""
    if not target.is_user_app or target.app is None:
        return DEFAULT_RULES
    try:
        info = describe_app(AppSpec(target.app, target.factory, target.app_dir))
        bases = {layer["name"]: tuple(layer.get("bases", ())) for layer in info.layers}
    except AppLoadError:
        bases = {}
    chosen = tuple(name for name in stack if name in target.layers)
    return Rules(
        app_layers=chosen,
        app_bases={name: bases.get(name, ()) for name in chosen},
        app_root=(target.app_dir or os.getcwd()) + "/",
    )


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


def write_outputs(result: ProfileResult) -> None:
    """The flame graph and the JSON (the collapsed stacks are py-spy's own file)."""

    def kind_of(frame: Frame) -> str | None:
        found = DEFAULT_RULES.claim(frame)
        return found.owner.kind if found is not None else None

    title = (
        f"{result.target} with {stack_name(result.stack)}: {result.samples} samples, "
        f"{result.wrk.qps:,.0f} req/s under py-spy"
    )
    result.files["flamegraph"].write_text(render_svg(result.stacks, title=title, kind_of=kind_of))
    result.files["json"].write_text(json.dumps(result.to_dict(), indent=2) + "\n")


__all__ = ["DEFAULT_OUT_DIR", "ProfileError", "ProfileResult", "PySpyError", "profile"]
