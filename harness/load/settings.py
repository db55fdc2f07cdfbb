"""What load to send: one object, built once by a command and passed whole.

The concurrency levels, how long each is measured after a discarded warm-up (or how many requests
it is), wrk's per-request timeout and threads, where wrk runs (the CPUs it is pinned to) and which
wrk, and the request.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.load.request import Request
from harness.load.wrk_output import wrk_seconds


@dataclass(frozen=True)
class LoadSettings:
    levels: tuple[int, ...] = (64,)
    duration: float = 3.0  # seconds per level (wrk runs whole seconds)
    warmup: float = 1.0  # seconds of discarded load before the levels; 0: none
    timeout: float = 5.0  # wrk's per-request timeout
    threads: int | None = None  # wrk threads; None: one per CPU wrk may use
    cpus: tuple[int, ...] | None = None  # wrk pinned to these CPUs; None: not pinned
    wrk: str | None = None  # the wrk binary; None: $HARNESS_WRK, else wrk on PATH
    request: Request | None = None  # None: GET /healthz, checked strictly (a target's own)
    # A measured level of exactly this many answered requests, on one connection, ended as soon
    # as they are answered (`duration` is then only its bound); None: levels of `duration`.
    requests: int | None = None
    # Such a level sent one request at a time, each once the server is blocked (harness.load.
    # paced: the count of instructions then does not depend on the machine's speed).
    paced: bool = False
    # Open-model load (harness.load.k6): the arrival rates to send, req/s; or rates as shares of
    # the slowest set's closed-model peak (0.5: half of it), resolved once that is measured.
    rates: tuple[float, ...] = ()
    rate_shares: tuple[float, ...] = ()

    def replace(self, **changes: Any) -> LoadSettings:
        return dataclasses.replace(self, **changes)

    @property
    def duration_s(self) -> float:
        """What wrk really runs: whole seconds."""
        return float(wrk_seconds(self.duration))

    @property
    def warmup_s(self) -> float:
        return float(wrk_seconds(self.warmup)) if self.warmup > 0 else 0.0

    @property
    def asked(self) -> Request:
        return self.request or Request()
