"""The concurrency sweep (wrktest.sh done right): warm up, run wrk at each level, keep everything.

`sweep()` is the Python API under `harness run`, and what compare and profile build on.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.load.datfile import append_row, truncate_to, write_rows
from harness.load.limits import fd_shortfall, raise_fd_limit
from harness.load.progress import NullReporter, Reporter
from harness.load.request import Request
from harness.load.results import ResultError, SweepResult, dat_row
from harness.load.wrk import WrkError, resolve_wrk, run_wrk, wrk_version
from harness.load.wrk_output import WrkResult, wrk_seconds
from harness.machine.environment import environment as machine_environment

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


class SweepError(ValueError):
    """A sweep that cannot start; one line, said before anything runs."""


class OutputError(SweepError):
    """The results could not be written (a full disk, say): the sweep stopped, and NAME.dat and
    NAME.json both still hold exactly the levels the message counts. One line."""


def preset_threads(preset: Preset) -> int | None:
    return preset.threads_per_cpu * (os.cpu_count() or 1) if preset.threads_per_cpu else None


def check_url(url: str, *, allow_remote: bool = False) -> str:
    """The URL's host, if wrk may be pointed at it: an http(s) URL to a loopback host, or to
    any host with `allow_remote`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SweepError(f"not an http(s) URL: {url!r} (e.g. http://127.0.0.1:8000/healthz)")
    try:
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError as exc:
        raise SweepError(f"bad port in URL {url!r}: {exc}") from None
    if not allow_remote and not is_loopback(parts.hostname):
        # A load generator pointed at someone else's server is an attack, not a benchmark: the
        # user must say that this host is theirs to load.
        raise SweepError(
            f"{parts.hostname!r} is not a loopback host: load goes only to 127.0.0.0/8, ::1 "
            "or localhost, unless --allow-remote says the host is yours to load"
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
        raise SweepError(f"job name must be a plain file name: {name!r}")


def check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise SweepError(
            f"cannot write to output directory {out_dir}: {exc.strerror or exc}"
        ) from None


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    unique = tuple(dict.fromkeys(int(level) for level in levels))
    if not unique:
        raise SweepError("no concurrency levels given")
    if any(level < 1 for level in unique):
        raise SweepError(f"concurrency levels must be at least 1: {list(unique)}")
    return unique


def auto_threads(cpus: tuple[int, ...] | None) -> int:
    """One wrk thread per CPU wrk may use: more threads than cores only adds switching."""
    return len(cpus) if cpus else len(os.sched_getaffinity(0))


def environment(*, wrk: str, cpus: tuple[int, ...] | None, fd_limit: int) -> dict[str, Any]:
    return machine_environment(
        wrk=wrk,
        wrk_version=wrk_version(wrk),
        wrk_cpus=list(cpus) if cpus else None,
        pinning=f"wrk on CPU {','.join(map(str, cpus))}" if cpus else "wrk not pinned",
        fd_limit=fd_limit,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _skipped(url: str, concurrency: int, threads: int, reason: str) -> WrkResult:
    return WrkResult(
        command=[],
        url=url,
        concurrency=concurrency,
        threads=threads,
        connections=0,
        duration_s=0.0,
        status="skipped",
        reason=reason,
    )


def kept_levels(result: SweepResult) -> str:
    """`3 finished levels are kept in NAME.dat and NAME.json`, for an error that stops a sweep."""
    n = len(result.levels)
    return (
        f"{n} finished level{'s are' if n != 1 else ' is'} kept in {result.dat_path} and "
        f"{result.json_path}"
    )


def _output_error(result: SweepResult, path: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write {path}: {exc.strerror or exc}; the sweep stopped, and its "
        f"{kept_levels(result)}"
    )


def save(result: SweepResult) -> None:
    """result.save(), an OSError made an OutputError (the .json on disk stays the last one)."""
    try:
        result.save()
    except OSError as exc:
        raise _output_error(result, result.json_path, exc) from None


def record(result: SweepResult, level: WrkResult) -> None:
    """Add a finished level to NAME.dat (if it has a row) and NAME.json, both or neither: a
    failed write undoes the other, so the two files always hold the same levels."""
    result.levels.append(level)
    before: int | None = None
    writing = result.dat_path
    try:
        if level.answered:
            before = append_row(result.dat_path, dat_row(level))  # all or nothing itself
        writing = result.json_path
        result.save()  # atomic: the old NAME.json stays if this fails
    except OSError as exc:
        result.levels.pop()
        if before is not None:
            truncate_to(result.dat_path, before)
        raise _output_error(result, writing, exc) from None


def sweep(
    *,
    url: str,
    name: str = DEFAULT_NAME,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    levels: Sequence[int] = DEFAULT_PRESET.levels,
    duration: float = DEFAULT_PRESET.duration,
    timeout: float = DEFAULT_PRESET.timeout,
    threads: int | None = None,
    warmup: float = DEFAULT_PRESET.warmup,
    wrk: str | None = None,
    cpus: tuple[int, ...] | None = None,
    resume: bool = False,
    progress: bool | Reporter = True,
    meta: dict[str, Any] | None = None,
    probe: Probe | None = None,
    request: Request | None = None,
    allow_remote: bool = False,
) -> SweepResult:
    """Warm up (discarded), then run wrk at each level in order. Each finished level is appended
    to NAME.dat and NAME.json is rewritten, so Ctrl-C keeps them and `resume=True` runs only the
    levels not yet recorded. A level that fails is recorded with its reason and the sweep goes
    on. `threads=None` is one per CPU wrk may use; never more than the connections.

    `request`, when it is not a plain GET of `url`, is sent through a wrk script, NAME.lua.

    `probe(concurrency)` is called just before each measured level and returns a function called
    just after it; the dict that returns is kept in the level's `extra` (compare records the
    server's CPU time this way).

    `allow_remote` lets the URL's host be any host, not only a loopback one.

    Raises SweepError or WrkError before anything runs; OutputError if the results cannot be
    written (the finished levels stay in both files); KeyboardInterrupt after saving."""
    check_url(url, allow_remote=allow_remote)
    check_name(name)
    plan = check_levels(levels)
    if duration <= 0 or timeout <= 0 or warmup < 0:
        raise SweepError("duration and timeout must be positive, warm-up not negative")
    if threads is not None and threads < 1:
        raise SweepError("threads must be at least 1")
    wrk_path = resolve_wrk(wrk)
    out = Path(out_dir)
    check_out_dir(out)
    script = None
    if request is not None and not request.plain:
        script_path = out / f"{name}.lua"
        script_path.write_text(request.lua(), encoding="utf-8")
        script = str(script_path)
    meta = dict(meta or {})
    fd_limit = raise_fd_limit()
    settings = {
        "levels": list(plan),
        "duration_s": float(wrk_seconds(duration)),
        "timeout_s": float(wrk_seconds(timeout)),
        "threads": threads if threads is not None else "auto",
        "auto_threads": auto_threads(cpus),  # what auto means here (still capped by c)
        "warmup_s": float(wrk_seconds(warmup)) if warmup > 0 else 0.0,
        "latency": True,
        "cpus": list(cpus) if cpus else None,
        "request": request.to_dict() if request is not None else None,
    }
    result = SweepResult(name=name, url=url, out_dir=out, settings=settings, meta=meta)
    if resume and result.json_path.exists():
        try:
            previous = SweepResult.load(result.json_path)
        except ResultError as exc:
            raise SweepError(f"cannot resume: {exc}") from None
        if previous.url != url:
            raise SweepError(
                f"cannot resume: {result.json_path} is a run against {previous.url}, not {url}"
            )
        # Keep what was measured; a level skipped for descriptors may fit now.
        result.levels = [lv for lv in previous.levels if lv.status != "skipped"]
        result.started_at = previous.started_at
        result.meta = {**previous.meta, **meta}
    result.started_at = result.started_at or _now()
    result.environment = environment(wrk=wrk_path, cpus=cpus, fd_limit=fd_limit)
    done = {level.concurrency for level in result.levels}
    pending = [level for level in plan if level not in done]

    # Fresh files: the .dat holds exactly the levels in the .json that have a row, in run order.
    try:
        write_rows(result.dat_path, [dat_row(lv) for lv in result.answered_levels])
    except OSError as exc:
        raise _output_error(result, result.dat_path, exc) from None
    save(result)

    reporter: Reporter
    if isinstance(progress, bool):
        if progress:
            from harness.load.progress import RichReporter

            reporter = RichReporter()
        else:
            reporter = NullReporter()
    else:
        reporter = progress

    def threads_for(concurrency: int) -> int:
        return min(threads or auto_threads(cpus), concurrency)

    run_s = float(wrk_seconds(duration))
    warm_s = float(wrk_seconds(warmup)) if warmup > 0 and pending else 0.0
    try:
        reporter.start(result, pending, warm_s + run_s * len(pending))
        if warm_s:
            level = next(
                (c for c in pending if fd_shortfall(c, threads_for(c), fd_limit) is None),
                None,
            )
            if level is not None:
                reporter.warmup(level, warm_s)
                warm = run_wrk(
                    url,
                    connections=level,
                    threads=threads_for(level),
                    duration=warm_s,
                    timeout=timeout,
                    wrk=wrk_path,
                    cpus=cpus,
                    latency=False,
                    script=script,
                )
                if not warm.is_ok:
                    reporter.note(f"warm-up failed: {warm.reason}")
        for index, level in enumerate(pending):
            level_threads = threads_for(level)
            shortfall = fd_shortfall(level, level_threads, fd_limit)
            reporter.level_start(index, level, 0.0 if shortfall else run_s)
            if shortfall:
                measured = _skipped(url, level, level_threads, f"skipped: {shortfall}")
            else:
                finish = probe(level) if probe is not None else None
                measured = run_wrk(
                    url,
                    connections=level,
                    threads=level_threads,
                    duration=run_s,
                    timeout=timeout,
                    wrk=wrk_path,
                    cpus=cpus,
                    script=script,
                )
                if finish is not None:
                    measured.extra.update(finish())
            record(result, measured)
            reporter.level_done(measured)
    except KeyboardInterrupt:
        result.interrupted = True
        reporter.finish()
        save(result)
        raise
    except BaseException:
        reporter.finish()
        raise
    result.finished_at = _now()
    reporter.finish()
    save(result)
    return result


__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_OUT_DIR",
    "PRESETS",
    "OutputError",
    "Preset",
    "SweepError",
    "SweepResult",
    "WrkError",
    "sweep",
]
