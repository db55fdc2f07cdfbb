"""The one place that knows the middleware names, their order, and how users spell a stack."""

from __future__ import annotations

# Outermost first. request-id wraps everything so that every later layer (and the log lines they
# write) sees the id; logger sits outside recovery so that a caught panic is still logged as a 500;
# recovery sits outside the header middlewares and dump so that an exception raised in them is
# caught too; dump is innermost so it records exactly what the app received and answered.
ORDER: tuple[str, ...] = ("request-id", "logger", "recovery", "secure", "nocache", "cors", "dump")


class UnknownMiddleware(ValueError):
    """A middleware name that is not in ORDER; the message lists the valid ones."""


def valid_names() -> str:
    return ", ".join(("none", "all", *ORDER))


def parse_stack(spec: str) -> tuple[str, ...]:
    """`none`, `all`, or names joined by `,` or `+`; returned in canonical order, no repeats."""
    names = [part.strip() for part in spec.replace("+", ",").split(",") if part.strip()]
    if not names:
        raise UnknownMiddleware(f"empty middleware list; valid: {valid_names()}")
    chosen: set[str] = set()
    for name in names:
        if name == "none":
            continue
        if name == "all":
            chosen.update(ORDER)
        elif name in ORDER:
            chosen.add(name)
        else:
            raise UnknownMiddleware(f"unknown middleware {name!r}; valid: {valid_names()}")
    return tuple(name for name in ORDER if name in chosen)


def parse_sets(spec: str) -> list[tuple[str, ...]]:
    """Comma-separated sets, each joined with `+` (`none,request-id+logger,all`); `each` expands
    to `none`, every single middleware, then `all`."""
    sets: list[tuple[str, ...]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part == "each":
            sets.extend([(), *((name,) for name in ORDER), ORDER])
        else:
            sets.append(parse_stack(part))
    if not sets:
        raise UnknownMiddleware(f"no middleware set given; valid: {valid_names()}, each")
    unique: list[tuple[str, ...]] = []
    for stack in sets:
        if stack not in unique:
            unique.append(stack)
    return unique


def stack_name(stack: tuple[str, ...]) -> str:
    """The label of a stack in files and tables: `none`, `all`, or names joined by `+`."""
    if not stack:
        return "none"
    if stack == ORDER:
        return "all"
    return "+".join(stack)
