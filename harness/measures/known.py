"""The costs calibrate knows in advance, by kind: `spin:N` (N of CPU time, a cost in µs) and
`work:N` (N turns of a loop, a cost in instructions, counted here in-process under callgrind).

A turn of middleware.spin.worker allocates nothing, so with a fixed hash seed it executes the
same instructions in every process: two short runs of the same interpreter under callgrind,
N1 and N2 turns (two calls each, the first one warming the loop up), differ by exactly
2 × (N2 − N1) turns, whatever the interpreter's start-up costs.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import UsageError
from harness.measures import callgrind
from middleware.stack import (
    SPIN_SYNTAX,
    WORK_SYNTAX,
    BadSpin,
    parse_spin,
    parse_work,
    spin_label,
    work_label,
)

TURNS = (2_000, 12_000)  # the two runs' turns: 20,000 turns apart
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
_RUN = "from middleware.spin import worker; work = worker({n}); work(); work()"


def _instructions(python: str, turns: int) -> int:
    with tempfile.TemporaryDirectory(prefix="mwbench-known-") as tmp:
        done = subprocess.run(
            [
                callgrind.find_valgrind(),
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg",
                python,
                "-c",
                _RUN.format(n=turns),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise callgrind.CallgrindError(f"counting the work loop under callgrind failed: {last}")
    return int(found.group(1))


@functools.cache
def instructions_per_turn(python: str = sys.executable) -> float:
    """What one turn of `work:N` executes, counted in-process under callgrind by `python`."""
    low, high = (_instructions(python, n) for n in TURNS)
    return (high - low) / (2 * (TURNS[1] - TURNS[0]))


@dataclass(frozen=True)
class KnownCost:
    """One kind of known cost: how its amounts are given, named as sets, and known in a
    measure's unit."""

    kind: str  # "spin" or "work"
    default: str  # calibrate's costs when none are given
    tolerance: float  # calibrate's default: a measured interval widened by this share
    syntax: str

    def parse(self, text: str) -> tuple[int, ...]:
        """`5,20,50` µs (`5us,1.5ms`) for spin, `2000,5000` turns for work: ascending, once."""
        parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
        if not parts:
            raise BadSpin(f"no cost given; write {self.syntax}")
        return tuple(sorted({self._one(part) for part in parts}))

    def _one(self, part: str) -> int:
        if self.kind == "work":
            try:
                return parse_work(f"work:{part}")
            except BadSpin:
                raise BadSpin(f"bad cost {part!r}: a number of loop turns, {WORK_SYNTAX}") from None
        value = part if part.endswith(("us", "µs", "ms")) else part + "us"
        try:
            return parse_spin(f"spin:{value}")
        except BadSpin:
            raise BadSpin(
                f"bad cost {part!r}: a number of µs (5, 20.5) or with a unit (5us, 1.5ms), "
                "from 1us to 1000ms"
            ) from None

    def label(self, amount: int) -> str:
        return spin_label(amount) if self.kind == "spin" else work_label(amount)

    def known(self, amount: int) -> float:
        """The cost of `amount` in its measure's unit: µs, or instructions."""
        return amount / 1000 if self.kind == "spin" else amount * instructions_per_turn()


KNOWN_COSTS = {
    "spin": KnownCost("spin", "5,20,50", 0.10, SPIN_SYNTAX),
    # Turns of ~130 instructions: 260k to 1.3M, far above a layer's own dispatch (~3k), which a
    # 2% check must not see.
    "work": KnownCost("work", "2000,5000,10000", 0.02, WORK_SYNTAX),
}


def known_cost_of(kinds: Sequence[str | None]) -> KnownCost:
    """The one kind of known cost that every measure of a calibration knows."""
    found = set(kinds)
    if None in found or len(found) != 1:
        raise UsageError(
            "calibrate needs measures that know the same cost: cpu and qps (spin:N, CPU time), "
            "or instructions or instructions-perf (work:N)",
            param="measures",
        )
    kind = found.pop()
    assert kind is not None
    return KNOWN_COSTS[kind]
