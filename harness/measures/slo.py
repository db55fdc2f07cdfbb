"""A service level objective: what a rate must meet to count as within capacity.

`p99<50ms,success>=99.95%`: each rule a figure, a comparison and a value. The figures are
latencies from each request's intended start (avg, p50, p90, p99, p99.9, max; in ms, s or µs),
`success` (the share of requests answered as expected, %) and `qps` (the least rate that counts:
a capacity below it is none). A rate that was not sustained never meets an SLO. The default is
the source document's reference values: average response time under 500 ms, success at least
99.95%, at least 1,000 QPS per server.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import UsageError
from harness.load.k6 import RateResult

DEFAULT_SLO = "avg<500ms,success>=99.95%,qps>=1000"
LATENCIES = ("avg", "p50", "p90", "p99", "p99.9", "max")
FIGURES = (*LATENCIES, "success", "qps")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_RULE = re.compile(r"\s*([a-z0-9.]+)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*(ms|us|µs|s|%)?\s*")
_TO_MS = {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3}


@dataclass(frozen=True)
class Rule:
    figure: str
    op: str
    value: float  # ms for a latency, % for success, req/s for qps

    def describe(self) -> str:
        unit = "ms" if self.figure in LATENCIES else "%" if self.figure == "success" else ""
        return f"{self.figure}{self.op}{self.value:g}{unit}"

    def holds(self, result: RateResult) -> bool:
        if self.figure == "success":
            found: float | None = result.success_pct
        elif self.figure == "qps":
            found = result.rate
        else:
            found = result.percentile(self.figure)
        return found is not None and OPERATORS[self.op](found, self.value)


@dataclass(frozen=True)
class Slo:
    rules: tuple[Rule, ...]

    def describe(self) -> str:
        return ",".join(rule.describe() for rule in self.rules)

    @property
    def least_rate(self) -> float | None:
        """The rate below which nothing counts (`qps>=1000`), if the SLO has one."""
        floors = [r.value for r in self.rules if r.figure == "qps" and r.op in (">=", ">")]
        return max(floors) if floors else None

    def missed(self, result: RateResult) -> list[str]:
        """The rules `result` breaks, in words ([]: within the SLO)."""
        if result.status != "ok":
            return [f"not sustained: {result.reason}"]
        return [rule.describe() for rule in self.rules if not rule.holds(result)]


def parse_slo(text: str) -> Slo:
    """`p99<50ms,success>=99.95%` into an Slo; UsageError naming the figures otherwise."""
    rules = []
    for part in [p for p in text.split(",") if p.strip()] or [text]:
        found = _RULE.fullmatch(part.lower())
        if found is None or found.group(1) not in FIGURES:
            raise UsageError(
                f"cannot read the SLO rule {part.strip()!r}: give rules like "
                f"p99<50ms,success>=99.95%; figures: {', '.join(FIGURES)}",
                param="slo",
            )
        figure, op, number, unit = found.groups()
        value = float(number)
        if figure in LATENCIES:
            if unit in (None, "%"):
                raise UsageError(f"give {figure} a time: e.g. {figure}<50ms", param="slo")
            value *= _TO_MS[unit]
        elif unit not in ((None, "%") if figure == "success" else (None,)):
            raise UsageError(f"{figure} takes no {unit}: e.g. {_example(figure)}", param="slo")
        rules.append(Rule(figure, op, value))
    return Slo(tuple(rules))


def _example(figure: str) -> str:
    return "success>=99.95%" if figure == "success" else "qps>=1000"
