"""The options that set a compare's rules: what each round reads (--measure), how precise the
rounds must get (--precision, --budget), and the gate (--max-overhead), each from a value with
its unit, turned into the objects harness.measure takes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from harness.cli.build_settings import LoadOptions, given
from harness.cli.params import Decorator, Duration, comma_items
from harness.errors import UsageError
from harness.load.wrk_output import parse_duration

if TYPE_CHECKING:
    from harness.experiments.compare.gate import Gate
    from harness.experiments.compare.rounds import Precision
    from harness.measures.slo import Slo


@dataclass(frozen=True)
class Quantity:
    """A number with what it counts in: µs (`2us`, `1ms`), a share (`0.1%`: 0.001), or the
    measure's own unit (a bare number)."""

    value: float
    unit: str | None  # "µs", "%", or None: the measure's unit

    def in_unit_of(self, measure_unit: str, what: str) -> float:
        """The value in a measure's unit; UsageError when it is a time and the measure is not."""
        if self.unit == "µs" and measure_unit == "ms":  # a latency: 500us or 0.5ms
            return self.value / 1000
        if self.unit == "µs" and measure_unit != "µs":
            raise UsageError(
                f"{what} is a time, but the measure counts {measure_unit}: give a bare number "
                "of them or a percentage"
            )
        return self.value


class QuantityType(click.ParamType):
    """`2us`, `0.5us`, `1ms`, `0.1%`, or a bare number; more than 0."""

    name = "amount"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Quantity:
        if isinstance(value, Quantity):
            return value
        text = str(value).strip().replace("µs", "us")
        try:
            if text.endswith("%"):
                found = Quantity(float(text[:-1]) / 100, "%")
            elif _is_number(text):  # 5000, 1e3: the measure's own unit
                found = Quantity(float(text), None)
            else:
                found = Quantity(round(parse_duration(text) * 1e6, 9), "µs")
        except ValueError:
            self.fail(f"not an amount: {value!r} (e.g. 2us, 1ms, 0.1%, 5000)", param, ctx)
        if not math.isfinite(found.value):
            self.fail(f"not a finite amount: {value!r}", param, ctx)
        if not found.value > 0:
            self.fail(f"must be more than 0: {value!r}", param, ctx)
        return found


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class MeasureList(click.ParamType):
    """A comma list of measures (harness.measures.registry), the headline first."""

    name = "measures"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        from harness.measures.registry import MEASURES

        names = comma_items(value)
        for name in names:
            if name not in MEASURES:
                self.fail(f"unknown measure {name!r}; valid: {', '.join(MEASURES)}", param, ctx)
        if not names:
            self.fail(f"no measure given; valid: {', '.join(MEASURES)}", param, ctx)
        return tuple(dict.fromkeys(names))


def measures_option(
    default: str,
    only: tuple[str, ...] | None = None,
    what: str = "a comma list, the first the headline (precision, gate, findings)",
) -> Decorator:
    """--measure; `only`: the measures a command can take, the ones its help lists."""
    from harness.measures.registry import MEASURES

    listed = [m for m in MEASURES.values() if only is None or m.name in only]
    return click.option(
        "--measure",
        "measures",
        type=MeasureList(),
        default=default,
        show_default=True,
        help=f"What each round reads, {what}: "
        + "; ".join(f"{m.name}: {m.title}" for m in listed)
        + ".",
    )


def precision_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--precision and --budget: rounds until every set's interval is that narrow."""
    for option in reversed(
        (
            click.option(
                "--precision",
                type=QuantityType(),
                default=None,
                help="Go on with interleaved rounds (at least 3) until every set's 95% "
                "half-width is at most this (2us; a bare number in the headline measure's "
                "unit; 0.1% of each set's cost), or --budget is spent; exit 1 naming the sets "
                "that missed. Rounds are then 1 s without warm-up unless --duration or --warmup "
                "says.  [default: compare's default rounds, or --repeat]",
            ),
            click.option(
                "--budget",
                type=Duration(positive=True),
                default=None,
                help="Wall time for the whole compare with --precision (e.g. 90s, 3m), or for "
                "compare's default rounds.  [default: 3m with --precision; 1m without]",
            ),
        )
    ):
        command = option(command)
    return command


@dataclass(frozen=True, kw_only=True)
class RuleOptions:
    """A compare's rules, as given: the open model's rates and SLO, the precision to reach, the
    gates to pass."""

    rates: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    slo: Slo | None = None
    capacity: bool = False
    precision: Quantity | None = None
    budget: float | None = None
    max_overhead: Quantity | None = None
    max_overhead_us: float | None = None
    max_leak: float | None = None


@dataclass(frozen=True)
class RulesMet:
    """A compare's rules resolved: the measures they imply, the load with its rates, the SLO,
    the precision target and the gate."""

    measures: tuple[str, ...]
    load: LoadOptions
    slo: Slo | None
    precision: Precision | None
    gate: Gate | None


def resolve_rules(rules: RuleOptions, measures: tuple[str, ...], load: LoadOptions) -> RulesMet:
    """--rate, --slo, --capacity and --max-leak choose the measures where --measure did not;
    --precision (or compare's default rounds) sets the rounds' rule and, unless given, their
    length; --max-overhead(-us) the gate."""
    measures, slo, load = open_model(rules.rates, rules.slo, rules.capacity, measures, load)
    measures = measures_with_leak_gate(rules.max_leak, measures)
    if load.requests is not None:
        check_counted(measures)
    precision = precision_from(rules.precision, rules.budget, measures, by_default=True)
    if precision is not None:
        load = short_rounds(load)
    gate = gate_from(rules.max_overhead, rules.max_overhead_us, measures)
    return RulesMet(measures, load, slo, precision, gate)


def check_counted(measures: tuple[str, ...]) -> None:
    """--requests sizes a counted window, which only a count's measures send."""
    from harness.load.settings import LoadSettings
    from harness.measures.registry import get_measure

    if not any(get_measure(name).prepare_load(LoadSettings()).requests for name in measures):
        raise UsageError(
            "sizes the window of --measure instructions (or instructions-perf); "
            f"{', '.join(measures)} run for --duration instead",
            param="requests",
        )


def precision_from(
    precision: Quantity | None,
    budget: float | None,
    measures: tuple[str, ...],
    *,
    by_default: bool = False,
) -> Precision | None:
    """--precision as the rounds' rule for the headline measure; without it, where `by_default`
    and --repeat was not given, the default rounds
    (harness.experiments.compare.rounds.default_rounds)."""
    from harness.experiments.compare.rounds import (
        DEFAULT_BUDGET_S,
        PRECISE_BUDGET_S,
        Precision,
        default_rounds,
    )
    from harness.measures.registry import get_measure

    headline = get_measure(measures[0])
    if precision is not None:
        target = precision.in_unit_of(headline.unit, "--precision")
        return Precision(
            target, budget or PRECISE_BUDGET_S, headline.name, of_cost=precision.unit == "%"
        )
    if by_default and not given("repeat"):
        return default_rounds(headline.name, budget or DEFAULT_BUDGET_S)
    return None


def short_rounds(load: LoadOptions) -> LoadOptions:
    """Rounds of 1 s without warm-up where neither --duration nor --warmup was given: with a
    precision rule, more rounds fit the budget (harness.experiments.compare.rounds)."""
    from harness.experiments.compare.rounds import PRECISE_DURATION_S, PRECISE_WARMUP_S

    if not given("duration"):
        load = load.replace(duration=PRECISE_DURATION_S)
    if not given("warmup"):
        load = load.replace(warmup=PRECISE_WARMUP_S)
    return load


def gate_from(
    max_overhead: Quantity | None, max_overhead_us: float | None, measures: tuple[str, ...]
) -> Gate | None:
    """--max-overhead (in the headline measure; a percentage of the reference's cost) or the
    older --max-overhead-us (server CPU µs), as compare's gate."""
    from harness.experiments.compare.gate import Gate
    from harness.measures.registry import get_measure

    if max_overhead is not None and max_overhead_us is not None:
        raise UsageError("give --max-overhead or --max-overhead-us, not both")
    if max_overhead_us is not None:
        if "cpu" not in measures:
            raise UsageError(
                "--max-overhead-us gates server CPU µs: add cpu to --measure, or "
                "give --max-overhead (in the headline measure's unit)"
            )
        return Gate(max_overhead_us, "cpu")
    if max_overhead is None:
        return None
    headline = get_measure(measures[0])
    limit = max_overhead.in_unit_of(headline.unit, "--max-overhead")
    return Gate(limit, headline.name, of_reference=max_overhead.unit == "%")


class RateList(click.ParamType):
    """Arrival rates: `1000,2000` req/s, or `25%,50%` of the slowest set's closed-model peak."""

    name = "rates"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if isinstance(value, tuple):
            return value
        parts = comma_items(value)
        shares = [p for p in parts if p.endswith("%")]
        if shares and len(shares) != len(parts):
            self.fail(f"give rates in req/s or in % of the slowest peak, not both: {value!r}")
        try:
            numbers = [float(p.rstrip("%").replace("k", "e3")) for p in parts]
        except ValueError:
            self.fail(f"not a rate: {value!r} (e.g. 1000,2000 or 25%,50%)", param, ctx)
        if not numbers or any(not n > 0 for n in numbers):
            self.fail(f"a rate is more than 0: {value!r}", param, ctx)
        if any(not math.isfinite(n) for n in numbers):
            self.fail(f"a rate is a finite number: {value!r}", param, ctx)
        if shares:
            return (), tuple(sorted({n / 100 for n in numbers}))
        if any(n != round(n) for n in numbers):
            self.fail(f"rates are whole requests a second: {value!r}", param, ctx)
        return tuple(sorted(set(numbers))), ()


def rate_option(
    of: str = "the slowest set's", implied: str = " (--measure latency, implied)"
) -> Decorator:
    """--rate; `of`: whose closed-model peak a share is of (run: the URL's)."""
    return click.option(
        "--rate",
        "rates",
        type=RateList(),
        default=None,
        help=f"Open-model load{implied}: arrival rates in req/s (1000,2000), or in % of {of} "
        "closed-model peak (25%,50%,75%), sent by k6 at a constant rate.",
    )


class SloType(click.ParamType):
    """`p99<50ms,success>=99.95%` (harness.measures.slo)."""

    name = "slo"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Slo:
        from harness.measures.slo import Slo, parse_slo

        if isinstance(value, Slo):
            return value
        try:
            return parse_slo(str(value))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


def slo_options(
    whose: str = "each set's", implied: str = " (--measure latency, implied)"
) -> Decorator:
    """--slo and --capacity; `whose`: what a capacity is found for (run: the URL's)."""
    from harness.measures.slo import DEFAULT_SLO

    def options(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--slo",
            type=SloType(),
            default=None,
            help=f"Find {whose} capacity within this SLO: the highest arrival rate sustained "
            "within it, by a bounded search under the closed-model peak (implies --capacity), "
            "e.g. 'p99<50ms,success>=99.95%'; figures: avg, p50, p90, p99, p99.9, max (a time), "
            f"success (%), qps (the least rate that counts).  [default: {DEFAULT_SLO}]",
        )(f)
        return click.option(
            "--capacity",
            is_flag=True,
            help=f"Find {whose} capacity within the SLO{implied}.",
        )(f)

    return options


def open_model(
    rates: tuple[tuple[float, ...], tuple[float, ...]] | None,
    slo: Slo | None,
    capacity: bool,
    measures: tuple[str, ...],
    load: LoadOptions,
) -> tuple[tuple[str, ...], Slo | None, LoadOptions]:
    """--rate, --slo and --capacity: the measures (latency when one was given and --measure was
    not), the SLO to find capacities within, and the load with its rates or shares."""
    from harness.measures.slo import DEFAULT_SLO, parse_slo

    if capacity and slo is None:
        slo = parse_slo(DEFAULT_SLO)
    if rates is not None:
        load = load.replace(rates=rates[0], rate_shares=rates[1])
    if (rates is not None or slo is not None) and not given("measures"):
        measures = ("latency",)
    return measures, slo, load


def measures_with_leak_gate(max_leak: float | None, measures: tuple[str, ...]) -> tuple[str, ...]:
    """--max-leak: the measures, memory when --measure was not given; a UsageError when it
    was given without memory."""
    if max_leak is None:
        return measures
    if not given("measures"):
        return ("memory",)
    if "memory" not in measures:
        raise UsageError("a leak is in bytes retained: add memory to --measure", param="max_leak")
    return measures
