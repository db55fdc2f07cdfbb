"""The one place that knows the middleware names, their order, and how users spell a stack."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

# Outermost first. request-id wraps everything so that every later layer (and the log lines they
# write) sees the id; logger sits outside recovery so that a caught panic is still logged as a 500;
# recovery sits outside the header middlewares and dump so that an exception raised in them is
# caught too; dump is innermost so it records exactly what the app received and answered.
ORDER: tuple[str, ...] = ("request-id", "logger", "recovery", "secure", "nocache", "cors", "dump")

# Each class-based adapter (asgi, wsgi, django) names a middleware's class after it, so that the
# names and their order are written here only.
CLASS_NAMES = {
    "request-id": "RequestIdMiddleware",
    "logger": "LoggerMiddleware",
    "recovery": "RecoveryMiddleware",
    "secure": "SecureMiddleware",
    "nocache": "NoCacheMiddleware",
    "cors": "CORSMiddleware",
    "dump": "DumpMiddleware",
}


def classes_in(adapter: ModuleType) -> dict[str, Any]:
    """ORDER's middlewares by name, as the classes `adapter` (a module) defines for them."""
    return {name: getattr(adapter, CLASS_NAMES[name]) for name in ORDER}


# `spin:N`, the calibration middleware: it burns N of the thread's CPU time per request and does
# nothing else. It is not in ORDER, so never part of `all` nor of `each`'s singles. It sits
# innermost, after dump, i.e. where the app's own work is: the layers outside it see and time it
# exactly as they would a slower app (logger's latency includes it, recovery guards it), and it
# changes nothing any of them records, so adding it to a set adds its cost and nothing else.
SPIN = "spin"
SPIN_MIN_NS = 1_000  # below ~1 µs the CPU clock's own cost (~0.2 µs a read) is too large a share
SPIN_MAX_NS = 1_000_000_000  # 1 s: more is a typo, and would make every request time out
SPIN_SYNTAX = "spin:N with N in us or ms, from 1us to 1000ms, e.g. spin:20us or spin:1.5ms"
_SPIN_VALUE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms)")
_UNIT_NS = {"us": 1_000, "µs": 1_000, "ms": 1_000_000}

# `work:N`, its twin for the instructions measure: N iterations of a loop whose instructions do not
# depend on anything but N (middleware.spin.worker), where spin's depend on the CPU's speed. Same
# place, same rules: innermost, never in `all`, one known-cost layer (spin or work) per stack.
WORK = "work"
WORK_MAX = 10_000_000
WORK_SYNTAX = f"work:N with N loop iterations, from 1 to {WORK_MAX}, e.g. work:2000"
KNOWN = (SPIN, WORK)  # the kinds of known-cost layer, as layers() names them


# A middleware given by import path (`starlette.middleware.gzip:GZipMiddleware`,
# `path/to/mw.py:Timing`) instead of by name: applied innermost, after the named ones and spin,
# by harness.serving.userapp around the built app (the adapters here never see it).
_IMPORT_PATH = re.compile(r"[^\s:,+]+:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class UnknownMiddleware(ValueError):
    """A middleware name that is not in ORDER; the message lists the valid ones."""


class BadSpin(UnknownMiddleware):
    """A `spin` whose cost is missing, unreadable or out of range; the message gives the syntax.
    A subclass of UnknownMiddleware, so every caller that turns a bad name into a usage error
    turns a bad spin into one too."""


class BadWork(BadSpin):
    """A `work` whose count is missing, unreadable or out of range; the message gives the
    syntax."""


def valid_names(names: tuple[str, ...] = ORDER) -> str:
    return ", ".join(("none", "all", *names, "spin:N", "work:N", "module:Name"))


def is_import_path(name: str) -> bool:
    return not is_known(name) and _IMPORT_PATH.fullmatch(name) is not None


def import_paths(stack: tuple[str, ...]) -> tuple[str, ...]:
    """The middlewares of `stack` given by import path, in the order given."""
    return tuple(name for name in stack if is_import_path(name))


def _number(value: float) -> str:
    """`value` with no trailing zeros and no exponent: 20, 1.5, 0.001."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def spin_label(ns: int) -> str:
    """The canonical name of a spin of `ns` nanoseconds: `spin:20us`, `spin:1.5ms`."""
    if ns >= 1_000_000:
        return f"{SPIN}:{_number(ns / 1e6)}ms"
    return f"{SPIN}:{_number(ns / 1e3)}us"


def parse_spin(text: str) -> int:
    """The cost in nanoseconds of `spin:N` (N with unit us, µs or ms); BadSpin otherwise."""
    _, sep, value = text.partition(":")
    match = _SPIN_VALUE.fullmatch(value.strip()) if sep else None
    if match is None:
        raise BadSpin(f"bad spin {text!r}; write {SPIN_SYNTAX}")
    ns = round(float(match[1]) * _UNIT_NS[match[2]])
    if not SPIN_MIN_NS <= ns <= SPIN_MAX_NS:
        raise BadSpin(f"spin {text!r} is out of range; write {SPIN_SYNTAX}")
    return ns


def is_spin(name: str) -> bool:
    return name == SPIN or name.startswith(SPIN + ":")


def work_label(iterations: int) -> str:
    return f"{WORK}:{iterations}"


def parse_work(text: str) -> int:
    """The iterations of `work:N`; BadWork otherwise."""
    _, sep, value = text.partition(":")
    if not sep or not value.strip().isdigit():
        raise BadWork(f"bad work {text!r}; write {WORK_SYNTAX}")
    iterations = int(value)
    if not 1 <= iterations <= WORK_MAX:
        raise BadWork(f"work {text!r} is out of range; write {WORK_SYNTAX}")
    return iterations


def is_work(name: str) -> bool:
    return name == WORK or name.startswith(WORK + ":")


def is_known(name: str) -> bool:
    """A middleware of known cost: `spin:N` (CPU time) or `work:N` (instructions)."""
    return is_spin(name) or is_work(name)


def known_layer(name: str) -> tuple[str, int]:
    """(SPIN, nanoseconds) or (WORK, iterations), in the canonical spelling's terms."""
    return (SPIN, parse_spin(name)) if is_spin(name) else (WORK, parse_work(name))


def known_label(kind: str, amount: int) -> str:
    return spin_label(amount) if kind == SPIN else work_label(amount)


def work_iterations(stack: tuple[str, ...]) -> int | None:
    """The iterations of the work in `stack`, None when it has none."""
    return next((parse_work(name) for name in stack if is_work(name)), None)


def spin_ns(stack: tuple[str, ...]) -> int | None:
    """The cost in nanoseconds of the spin in `stack`, None when it has none."""
    for name in stack:
        if is_spin(name):
            return parse_spin(name)
    return None


def layers(stack: tuple[str, ...]) -> list[tuple[str, int | None]]:
    """What the adapters build for `stack`, outermost first: (name, None) for each middleware in
    ORDER, then ("spin", nanoseconds) or ("work", iterations) innermost if the stack has one.
    Raises UnknownMiddleware (a ValueError) for a name that is neither."""
    unknown = sorted(
        name for name in set(stack) - set(ORDER) if not (is_known(name) or is_import_path(name))
    )
    if unknown:
        raise UnknownMiddleware(f"unknown middleware(s) {unknown}; valid: {valid_names()}")
    chosen: list[tuple[str, int | None]] = [(name, None) for name in ORDER if name in stack]
    known = {known_layer(name) for name in stack if is_known(name)}
    if len(known) > 1:
        shown = ", ".join(known_label(*one) for one in sorted(known))
        raise BadSpin(f"one spin or work per stack, not {shown}")
    chosen.extend(known)
    return chosen


def parse_stack(spec: str, names: tuple[str, ...] = ORDER) -> tuple[str, ...]:
    """`none`, `all`, or names joined by `,` or `+`, at most one `spin:N` or `work:N`, and
    middlewares by import path; returned in canonical order (the order of `names`, then the
    spin or work as `known_label` spells it, then the import paths as given), no repeats.
    `names` are the layers to choose from: this project's middlewares, or those found in a
    user's app."""
    given = [part.strip() for part in spec.replace("+", ",").split(",") if part.strip()]
    if not given:
        raise UnknownMiddleware(f"empty middleware list; valid: {valid_names(names)}")
    chosen: set[str] = set()
    known: set[tuple[str, int]] = set()
    paths: list[str] = []
    for name in given:
        if name == "none":
            continue
        if name == "all":
            chosen.update(names)
        elif name in names:
            chosen.add(name)
        elif is_known(name):
            known.add(known_layer(name))
        elif is_import_path(name):
            paths += [name] if name not in paths else []
        else:
            raise UnknownMiddleware(f"unknown middleware {name!r}; valid: {valid_names(names)}")
    if len(known) > 1:
        shown = ", ".join(known_label(*one) for one in sorted(known))
        kinds = {k for k, _ in known}
        kind = kinds.pop() if len(kinds) == 1 else "spin or work"
        raise BadSpin(f"one {kind} per set, not {shown}; to compare costs, list them as sets")
    return (
        *(name for name in names if name in chosen),
        *(known_label(*one) for one in known),
        *paths,
    )


def parse_sets(spec: str, names: tuple[str, ...] = ORDER) -> list[tuple[str, ...]]:
    """Comma-separated sets, each joined with `+` (`none,request-id+logger,all`); `each` expands
    to `none`, every single layer of `names`, then `all` (never a spin nor an import path: those
    are named)."""
    sets: list[tuple[str, ...]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part == "each":
            sets.extend([(), *((name,) for name in names), names])
        else:
            sets.append(parse_stack(part, names))
    if not sets:
        raise UnknownMiddleware(f"no middleware set given; valid: {valid_names(names)}, each")
    unique: list[tuple[str, ...]] = []
    for stack in sets:
        if stack not in unique:
            unique.append(stack)
    return unique


def stack_name(stack: tuple[str, ...], names: tuple[str, ...] = ORDER) -> str:
    """The label of a stack in tables and charts: `none`, `all` (every layer of `names`, when
    there are several), or names joined by `+` (`all+spin:20us`). Not for file names: see
    `stack_file_name`."""
    if not stack:
        return "none"
    # A middleware by import path is labelled by its own name: `GZipMiddleware`.
    extra = tuple(
        name.rpartition(":")[2] if is_import_path(name) else name
        for name in stack
        if is_known(name) or is_import_path(name)
    )
    named = tuple(name for name in stack if not (is_known(name) or is_import_path(name)))
    if len(names) > 1 and named == names:
        return "+".join(("all", *extra))
    return "+".join((*named, *extra))


def stack_file_name(stack: tuple[str, ...], names: tuple[str, ...] = ORDER) -> str:
    """`stack_name` spelled for a file name: `spin:20us` becomes `spin-20us` (a `:` is not
    portable in file names, and reads as a drive or a URL scheme); `#2` is `-2`."""
    return re.sub(r"[^A-Za-z0-9._+-]", "-", stack_name(stack, names))
