"""The concurrency sweep (wrktest.sh done right): warm up, run wrk at each level, keep everything.

`sweep()` is the Python API under `harness run`, and what compare and profile build on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.experiments.sweep.plan import (
    DEFAULT_LOAD,
    DEFAULT_NAME,
    DEFAULT_OUT_DIR,
    OutputError,
    SweepError,
    SweepPlan,
    SweepRequest,
    plan_sweep,
)
from harness.experiments.sweep.progress import NullReporter, Reporter
from harness.load.datfile import append_row, truncate_to, write_rows
from harness.load.limits import fd_shortfall
from harness.load.paced import run_paced
from harness.load.results import ResultError, SweepResult, dat_row
from harness.load.settings import LoadSettings
from harness.load.wrk import (
    WrkError,
    WrkLoad,
    counting_script,
    run_counted,
    run_wrk,
    wrk_version,
)
from harness.load.wrk_output import WrkResult
from harness.machine.environment import environment as machine_environment


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


def start_result(plan: SweepPlan) -> SweepResult:
    """The result the sweep adds to: a fresh one, or with `resume` what NAME.json already holds
    of this URL; NAME.dat and NAME.json rewritten to hold exactly its levels."""
    request_lua = plan.load.request.lua() if plan.load.request is not None else ""
    if plan.script is not None:
        plan.script.write_text(request_lua, encoding="utf-8")
    if plan.counting is not None and plan.load.requests is not None:
        script, marker = plan.counting
        script.write_text(counting_script(request_lua, plan.load.requests, marker), "utf-8")
    result = SweepResult(
        name=plan.name,
        url=plan.url,
        out_dir=plan.out_dir,
        settings=plan.settings(),
        meta=dict(plan.meta),
    )
    if plan.resume and result.json_path.exists():
        try:
            previous = SweepResult.load(result.json_path)
        except ResultError as exc:
            raise SweepError(f"cannot resume: {exc}") from None
        if previous.url != plan.url:
            raise SweepError(
                f"cannot resume: {result.json_path} is a run against {previous.url}, not {plan.url}"
            )
        # Keep what was measured; a level skipped for descriptors may fit now.
        result.levels = [lv for lv in previous.levels if lv.status != "skipped"]
        result.started_at = previous.started_at
        result.meta = {**previous.meta, **plan.meta}
    result.started_at = result.started_at or _now()
    result.environment = environment(wrk=plan.wrk, cpus=plan.load.cpus, fd_limit=plan.fd_limit)
    # Fresh files: the .dat holds exactly the levels in the .json that have a row, in run order.
    try:
        write_rows(result.dat_path, [dat_row(lv) for lv in result.answered_levels])
    except OSError as exc:
        raise _output_error(result, result.dat_path, exc) from None
    save(result)
    return result


def _reporter(progress: bool | Reporter) -> Reporter:
    if not isinstance(progress, bool):
        return progress
    if not progress:
        return NullReporter()
    from harness.experiments.sweep.progress import RichReporter

    return RichReporter()


def _run_wrk(plan: SweepPlan, concurrency: int, duration: float, latency: bool) -> WrkResult:
    script = plan.script
    load = WrkLoad(
        connections=concurrency,
        threads=plan.threads_for(concurrency),
        duration=duration,
        timeout=plan.load.timeout,
        latency=latency,
        script=str(script) if script is not None else None,
        env=plan.load.asked.secrets(),
    )
    return run_wrk(plan.url, load, wrk=plan.wrk, cpus=plan.load.cpus)


def warm_up(plan: SweepPlan, pending: list[int], reporter: Reporter) -> None:
    """wrk at the first level that fits the descriptors, for the warm-up (with a fixed count of
    requests, that many: every round then starts its window from the same state); its result is
    only looked at for a failure, to say so."""
    level = next(
        (c for c in pending if fd_shortfall(c, plan.threads_for(c), plan.fd_limit) is None),
        None,
    )
    if level is None:
        return
    reporter.warmup(level, plan.load.warmup_s)
    counted = plan.load.requests is not None
    warm = _counted(plan) if counted else _run_wrk(plan, level, plan.load.warmup_s, False)
    if not warm.is_ok:
        reporter.note(f"warm-up failed: {warm.reason}")


def _counted(plan: SweepPlan) -> WrkResult:
    assert plan.load.requests is not None
    if plan.load.paced:
        return run_paced(
            plan.url,
            count=plan.load.requests,
            request=plan.load.asked,
            serving=plan.serving,
            bound=plan.load.duration,
        )
    assert plan.counting is not None
    script, marker = plan.counting
    return run_counted(
        plan.url,
        count=plan.load.requests,
        script=script,
        marker=marker,
        bound=plan.load.duration,
        wrk=plan.wrk,
        cpus=plan.load.cpus,
        env=plan.load.asked.secrets(),
    )


def measure_level(plan: SweepPlan, concurrency: int) -> WrkResult:
    """One level: skipped if the descriptors cannot hold it, else wrk with the plan's probe
    around it (what it returns goes into the level's `extra`)."""
    threads = plan.threads_for(concurrency)
    shortfall = fd_shortfall(concurrency, threads, plan.fd_limit)
    if shortfall:
        return _skipped(plan.url, concurrency, threads, f"skipped: {shortfall}")
    finish = plan.probe(concurrency) if plan.probe is not None else None
    if plan.load.requests is not None:
        measured = _counted(plan)
    else:
        measured = _run_wrk(plan, concurrency, plan.load.duration_s, latency=True)
    if finish is not None:
        measured.extra.update(finish())
    return measured


def run_levels(plan: SweepPlan, result: SweepResult, reporter: Reporter) -> SweepResult:
    """Warm up (discarded), then each level not yet in `result`, each recorded as it finishes;
    Ctrl-C saves what finished and is raised again."""
    done = {level.concurrency for level in result.levels}
    pending = [level for level in plan.levels if level not in done]
    run_s = plan.load.duration_s
    warm_s = plan.load.warmup_s if pending else 0.0
    try:
        reporter.start(result, pending, warm_s + run_s * len(pending))
        if warm_s:
            warm_up(plan, pending, reporter)
        for index, level in enumerate(pending):
            skipped = fd_shortfall(level, plan.threads_for(level), plan.fd_limit) is not None
            reporter.level_start(index, level, 0.0 if skipped else run_s)
            measured = measure_level(plan, level)
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


def sweep(
    request: SweepRequest | None = None,
    /,
    *,
    progress: bool | Reporter = True,
    **fields: Any,
) -> SweepResult:
    """Warm up (discarded), then run wrk at each level of `request.load` in order, against
    `request.url`. Without a request, its fields are given as keywords:
    `sweep(url="http://127.0.0.1:8000/healthz", name="flask")`. `progress`: a Reporter, or
    True for the terminal's (False: none).

    Each finished level is appended to NAME.dat (`name`, in `out_dir`) and NAME.json is
    rewritten, so Ctrl-C keeps them and `resume=True` runs only the levels not yet recorded. A
    level that fails is recorded with its reason and the sweep goes on. wrk's threads
    (`load.threads`, None: one per CPU wrk may use) are never more than the connections.

    `load.request`, when it is not a plain GET of `url`, is sent through a wrk script, NAME.lua.

    `probe(concurrency)` is called just before each measured level and returns a function called
    just after it; the dict that returns is kept in the level's `extra` (compare records the
    server's CPU time this way).

    `allow_remote` lets the URL's host be any host, not only a loopback one.

    In steps: plan_sweep (check and resolve), start_result (fresh or resumed files), run_levels.
    Raises SweepError or WrkError before anything runs; OutputError if the results cannot be
    written (the finished levels stay in both files); KeyboardInterrupt after saving."""
    if request is None:
        request = SweepRequest(**fields)
    elif fields:
        raise TypeError(f"sweep() takes a request or its fields, not both: {sorted(fields)}")
    plan = plan_sweep(request)
    return run_levels(plan, start_result(plan), _reporter(progress))


__all__ = [
    "DEFAULT_LOAD",
    "DEFAULT_NAME",
    "DEFAULT_OUT_DIR",
    "LoadSettings",
    "OutputError",
    "SweepError",
    "SweepPlan",
    "SweepRequest",
    "SweepResult",
    "WrkError",
    "plan_sweep",
    "sweep",
]
