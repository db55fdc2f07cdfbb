"""A sweep's first step: its settings checked and resolved before anything runs, and the presets.

What a sweep may be pointed at (loopback only, unless the host is said to be the user's), the
levels and durations it can run, the output directory it can write, and wrk found.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import RunError, UsageError
from harness.load.limits import raise_fd_limit
from harness.load.settings import LoadSettings
from harness.load.wrk import resolve_wrk
from harness.load.wrk_output import wrk_seconds

DEFAULT_OUT_DIR = Path("_output/wrk")
Probe = Callable[[int], Callable[[], dict[str, Any]]]
DEFAULT_NAME = "apiserver"  # the original's default job name


@dataclass(frozen=True)
class Preset:
    levels: tuple[int, ...]
    duration: float
    timeout: float
    warmup: float
    threads_per_cpu: int | None  # None: auto (the CPUs wrk may use)

    def load(self, **changes: Any) -> LoadSettings:
        """The preset as the load to send, with `changes` (the options given beside it)."""
        threads = self.threads_per_cpu * (os.cpu_count() or 1) if self.threads_per_cpu else None
        chosen = LoadSettings(
            levels=self.levels,
            duration=self.duration,
            timeout=self.timeout,
            warmup=self.warmup,
            threads=threads,
        )
        return chosen.replace(**{k: v for k, v in changes.items() if v is not None})


PRESETS: dict[str, Preset] = {
    # The source document's wrktest.sh exactly: -t(3 x CPUs) -d300s -T30s --latency.
    "iam": Preset(
        levels=(200, 500, 1000, 3000, 5000, 10000, 15000, 20000, 25000, 50000),
        duration=300.0,
        timeout=30.0,
        warmup=10.0,
        threads_per_cpu=3,
    ),
    # A look in about ten seconds on a 2-core machine.
    "quick": Preset(
        levels=(8, 32, 64, 128), duration=2.0, timeout=5.0, warmup=1.0, threads_per_cpu=None
    ),
}
DEFAULT_PRESET = Preset(
    levels=(16, 32, 64, 128, 256, 512, 1024),
    duration=10.0,
    timeout=10.0,
    warmup=3.0,
    threads_per_cpu=None,
)
DEFAULT_LOAD = DEFAULT_PRESET.load()


class SweepError(UsageError):
    """A sweep that cannot start; one line, said before anything runs."""


class OutputError(RunError):
    """The results could not be written (a full disk, say): the sweep stopped, and NAME.dat and
    NAME.json both still hold exactly the levels the message counts. One line."""


def check_url(url: str, *, allow_remote: bool = False) -> str:
    """The URL's host, if wrk may be pointed at it: an http(s) URL to a loopback host, or to
    any host with `allow_remote`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SweepError(
            f"not an http(s) URL: {url!r} (e.g. http://127.0.0.1:8000/healthz)", param="url"
        )
    try:
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError as exc:
        raise SweepError(f"bad port in URL {url!r}: {exc}", param="url") from None
    if not allow_remote and not is_loopback(parts.hostname):
        # A load generator pointed at someone else's server is an attack, not a benchmark: the
        # user must say that this host is theirs to load.
        raise SweepError(
            f"allow_remote is needed to load {parts.hostname!r}, which is not a loopback host: "
            "load goes only to 127.0.0.0/8, ::1 or localhost unless the host is yours to load",
            param="allow_remote",
        )
    return parts.hostname


def remote_announcement(*, host: str, levels: Sequence[int], duration: float, warmup: float) -> str:
    """What `--allow-remote` is about to send, said before it is sent."""
    run_s, warm_s = wrk_seconds(duration), wrk_seconds(warmup) if warmup > 0 else 0
    total = warm_s + run_s * len(levels)
    return (
        f"sending load to {host}: {len(levels)} level{'s' if len(levels) != 1 else ''} of "
        f"{' '.join(map(str, levels))} connections, {run_s}s each"
        + (f" after a {warm_s}s warm-up" if warm_s else "")
        + f" ({total}s of load)"
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: it could resolve anywhere
        return False


def check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise SweepError(f"name must be a plain file name: {name!r}", param="name")


def check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write to output directory {out_dir}: {exc.strerror or exc}", param="out_dir"
        ) from None


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    unique = tuple(dict.fromkeys(int(level) for level in levels))
    if not unique:
        raise SweepError("no concurrency levels given", param="levels")
    if any(level < 1 for level in unique):
        raise SweepError(f"levels must be at least 1: {list(unique)}", param="levels")
    return unique


def auto_threads(cpus: tuple[int, ...] | None) -> int:
    """One wrk thread per CPU wrk may use: more threads than cores only adds switching."""
    return len(cpus) if cpus else len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class SweepPlan:
    """A sweep checked and resolved: what runs, in what order, against which files."""

    url: str
    name: str
    out_dir: Path
    load: LoadSettings
    wrk: str  # the binary, resolved
    levels: tuple[int, ...]
    fd_limit: int
    resume: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    probe: Probe | None = None
    serving: tuple[int, ...] = ()

    @property
    def script(self) -> Path | None:
        """NAME.lua: the request, when wrk cannot send it by itself, for levels of a duration (a
        count's script carries the request itself; a paced count sends it without wrk)."""
        request = self.load.request
        if request is None or request.plain or self.load.requests is not None:
            return None
        return self.out_dir / f"{self.name}.lua"

    @property
    def counting(self) -> tuple[Path, Path] | None:
        """With a fixed count of requests sent by wrk: NAME.count.lua, the request with its
        counter, and the file it creates at the last answer. None for a paced count (harness.
        load.paced sends it) or a level of a duration."""
        if self.load.requests is None or self.load.paced:
            return None
        return self.out_dir / f"{self.name}.count.lua", self.out_dir / f".{self.name}.answered"

    def threads_for(self, concurrency: int) -> int:
        return min(self.load.threads or auto_threads(self.load.cpus), concurrency)

    def settings(self) -> dict[str, Any]:
        load = self.load
        return {
            "levels": list(self.levels),
            "duration_s": load.duration_s,
            "timeout_s": float(wrk_seconds(load.timeout)),
            "threads": load.threads if load.threads is not None else "auto",
            "auto_threads": auto_threads(load.cpus),  # what auto means here (still capped by c)
            "warmup_s": load.warmup_s,
            "latency": True,
            "cpus": list(load.cpus) if load.cpus else None,
            "request": load.request.to_dict() if load.request is not None else None,
            "requests": load.requests,
            "paced": load.paced,
        }


@dataclass(frozen=True, kw_only=True)
class SweepRequest:
    """What a sweep is asked to run, as given: built once (the CLI builds it from its options)
    and taken whole by plan_sweep, which checks and resolves it. What each field means:
    harness.experiments.sweep.run.sweep."""

    url: str
    name: str = DEFAULT_NAME
    out_dir: Path | str = DEFAULT_OUT_DIR
    load: LoadSettings = DEFAULT_LOAD
    resume: bool = False
    meta: Mapping[str, Any] | None = None
    probe: Probe | None = None
    allow_remote: bool = False
    serving: tuple[int, ...] = ()  # the processes that serve the URL: a paced load waits for them


def plan_sweep(request: SweepRequest) -> SweepPlan:
    """Check everything a sweep needs before anything runs: SweepError (a UsageError) for bad
    settings, WrkError without a wrk, OutputError for a directory that cannot be written."""
    url, name, load = request.url, request.name, request.load
    check_url(url, allow_remote=request.allow_remote)
    check_name(name)
    levels = check_levels(load.levels)
    if load.duration <= 0:
        raise SweepError("duration must be positive", param="duration")
    if load.timeout <= 0:
        raise SweepError("timeout must be positive", param="timeout")
    if load.warmup < 0:
        raise SweepError("warmup cannot be negative", param="warmup")
    if load.threads is not None and load.threads < 1:
        raise SweepError("threads must be at least 1", param="threads")
    if load.requests is not None and load.requests < 1:
        raise SweepError("requests must be at least 1", param="requests")
    if load.paced and (load.requests is None or not request.serving):
        raise SweepError(
            "a paced load is a count of requests, to a server whose processes are known"
        )
    wrk = resolve_wrk(load.wrk)
    out = Path(request.out_dir)
    check_out_dir(out)
    return SweepPlan(
        url,
        name,
        out,
        load,
        wrk,
        levels,
        raise_fd_limit(),
        request.resume,
        dict(request.meta or {}),
        request.probe,
        request.serving,
    )
