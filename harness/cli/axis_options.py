"""The options that multiply or split a compare beyond its sets: --variant (an axis of
configurations) and --shard (a share of the sets, for a CI matrix)."""

from __future__ import annotations

from typing import Any

import click

variant_option = click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="NAME:KEY=VALUE",
    help="Serve every contender with these environment variables, as an axis (repeatable; "
    "the same NAME again adds a variable; NAME: alone sets nothing, the control), each "
    "variant against the first, e.g. --variant off: --variant on:TRACES=1.0",
)


class Shard(click.ParamType):
    """`K/N`: the K-th of N shares of a compare's sets (from 1)."""

    name = "K/N"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        index, sep, count = str(value).partition("/")
        if not (sep and index.strip().isdigit() and count.strip().isdigit()):
            self.fail(f"not K/N (e.g. 1/4): {value!r}", param, ctx)
        k, n = int(index), int(count)
        if not 1 <= k <= n:
            self.fail(f"K must be from 1 to N: {value!r}", param, ctx)
        return k, n
