"""What a sweep shows while it runs: a line per finished level, and a live bar on a terminal."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

if TYPE_CHECKING:
    from harness.load.results import SweepResult
    from harness.load.wrk_output import WrkResult


class Reporter(Protocol):
    def start(self, result: SweepResult, pending: list[int], total_s: float) -> None: ...
    def warmup(self, concurrency: int, seconds: float) -> None: ...
    def level_start(self, index: int, concurrency: int, seconds: float) -> None: ...
    def level_done(self, level: WrkResult) -> None: ...
    def note(self, text: str) -> None: ...
    def finish(self) -> None: ...


class NullReporter:
    def start(self, result: SweepResult, pending: list[int], total_s: float) -> None:
        pass

    def warmup(self, concurrency: int, seconds: float) -> None:
        pass

    def level_start(self, index: int, concurrency: int, seconds: float) -> None:
        pass

    def level_done(self, level: WrkResult) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


def format_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} µs" if value < 1 else f"{value:,.2f} ms"


def level_line(level: WrkResult) -> str:
    head = f"c={level.concurrency:<6}"
    if not level.is_ok:
        style = "yellow" if level.status == "skipped" else "red"
        return f"  {head} [{style}]{level.status}[/]: {level.reason}"
    style = "green" if level.success_pct >= 99.995 else "yellow"
    return (
        f"  {head} [bold]{level.qps:>10,.0f}[/] req/s   "
        f"avg {format_ms(level.latency_avg_ms):>10}   "
        f"p99 {format_ms(level.p99_ms):>10}   [{style}]{level.success_pct:6.2f}% ok[/]   "
        f"({level.threads} threads, {level.connections} conns, {level.duration_s:.2f}s)"
    )


def _threads(settings: dict[str, object]) -> str:
    if settings.get("threads") == "auto" and settings.get("auto_threads"):
        return f"auto ({settings['auto_threads']})"
    return str(settings.get("threads"))


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class RichReporter:
    """Lines for every level on any console; the live bar (level, time left, last QPS) only on
    a terminal, so logs and captured output stay clean."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._total = 0.0
        self._done_s = 0.0  # seconds of the plan already behind us
        self._phase_s = 0.0
        self._phase_start = 0.0
        self._count = 0
        self._last = "—"

    def start(self, result: SweepResult, pending: list[int], total_s: float) -> None:
        s = result.settings
        kept = len(result.levels)
        self.console.print(
            f"[bold]wrk sweep[/] of {result.url}: levels {' '.join(map(str, pending)) or 'none'}"
            f"{f' ({kept} kept from before)' if kept else ''}, {s['duration_s']:g}s each, "
            f"-T{s['timeout_s']:g}s, threads {_threads(s)}, warm-up {s['warmup_s']:g}s, "
            f"{result.environment.get('pinning', '')}; about {_clock(total_s)}",
            soft_wrap=True,
        )
        self._total = max(total_s, 0.001)
        self._count = len(pending)
        if not self.console.is_terminal or not pending:
            return
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[left]} left"),
            TextColumn("last {task.fields[last]}"),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task("starting", total=self._total, left="", last="—")
        self._progress.start()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _begin(self, description: str, seconds: float) -> None:
        with self._lock:
            self._phase_s = seconds
            self._phase_start = time.monotonic()
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, description=description)

    def _tick(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                if self._progress is None or self._task is None:
                    return
                into = min(time.monotonic() - self._phase_start, self._phase_s)
                completed = self._done_s + into
                self._progress.update(
                    self._task,
                    completed=completed,
                    left=_clock(self._total - completed),
                    last=self._last,
                )

    def warmup(self, concurrency: int, seconds: float) -> None:
        self._begin(f"warm-up c={concurrency}", seconds)

    def level_start(self, index: int, concurrency: int, seconds: float) -> None:
        with self._lock:
            self._done_s += self._phase_s  # the previous phase, however long it really took
            self._phase_s = 0.0
        self._begin(f"level {index + 1}/{self._count} c={concurrency}", seconds)

    def level_done(self, level: WrkResult) -> None:
        with self._lock:
            if level.is_ok:
                self._last = f"{level.qps:,.0f} req/s"
        self.console.print(level_line(level), soft_wrap=True)

    def note(self, text: str) -> None:
        self.console.print(f"[yellow]note:[/] {text}", soft_wrap=True)

    def finish(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
