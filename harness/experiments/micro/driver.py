"""What every in-process driver is, and how it logs what its server would log."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.errors import RunError
from harness.experiments.micro.replay import Reply
from middleware import sink


class MicroError(RunError):
    """Settings or an app that cannot be measured; one line, said before anything is timed."""


class NullStream(io.TextIOBase):
    """A text stream that drops what it is given: a logging handler on it still formats."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


_SERVER_LOGGERS: dict[str, logging.Logger] = {}


def server_logger(log_output: str) -> logging.Logger:
    """A logger (outside logging's registry) for what the server would log per request, e.g. an
    exception's traceback: same sink as the middlewares, formatted as uvicorn's default."""
    found = _SERVER_LOGGERS.get(log_output)
    if found is not None:
        return found
    sink.check_log_output(log_output)
    handler: logging.Handler
    if log_output == "null":
        handler = logging.StreamHandler(NullStream())
    elif log_output == "stdout":
        handler = logging.StreamHandler(sys.stdout)
    else:
        path = Path(log_output[len("file:") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, delay=True)  # appends, as the middlewares' sink
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger = logging.Logger(f"mwbench.micro.server.{log_output}", logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    _SERVER_LOGGERS[log_output] = logger
    return logger


class Driver(ABC):
    """One app under one request. `check()` answers once and returns what it answered;
    `run(n)` answers n times and returns what `clock` advanced by over the batch (ns)."""

    interface: str
    # Wall time by default; harness.experiments.micro.timing.CLOCKS has the thread's CPU time too.
    clock: Callable[[], int] = staticmethod(time.perf_counter_ns)

    @abstractmethod
    def check(self) -> Reply: ...

    @abstractmethod
    def run(self, n: int) -> int: ...

    def close(self) -> None:
        return None


@contextlib.contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the servers use (uvloop when installed), closed at the end."""
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return f"{type(loop).__module__}.{type(loop).__name__}"
