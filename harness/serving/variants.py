"""Configuration as an axis: a variant is a name and the environment variables every server of
it runs with (`--variant on:TRACES=1.0`).

What instrumentation costs depends on how it is configured (Sentry's `traces_sample_rate`,
OpenTelemetry's sampler), not on whether a class is in a list, and it often patches the
framework from outside, where no layer can toggle it. An app that reads its configuration from
the environment is measured in each configuration side by side, in the same interleaved rounds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The variables the harness itself sets for the servers it starts (targets.settings,
# harness.serving.userapp.entry): a variant may not change how the harness serves the app.
RESERVED_PREFIXES = ("MWBENCH_",)
SYNTAX = "a variant is NAME:KEY=VALUE (e.g. on:TRACES=1.0), or NAME: for one that sets nothing"
# A value kept out of compare.json: by the variable's name, or by its shape (a URL with a user
# or password in it: a Sentry DSN carries its key there).
_SECRET_KEY = re.compile(
    r"DSN|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|API_?KEY|PRIVATE", re.IGNORECASE
)
_SECRET_VALUE = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]+@", re.IGNORECASE)
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Variant:
    name: str
    env: tuple[tuple[str, str], ...] = ()  # in the order given

    def to_dict(self) -> dict[str, Any]:
        """As compare.json records it: a value that looks like a secret redacted."""
        return {"name": self.name, "env": {k: redacted(k, v) for k, v in self.env}}

    def describe(self) -> str:
        return ", ".join(f"{k}={redacted(k, v)}" for k, v in self.env) or "nothing set"


def redacted(key: str, value: str) -> str:
    if _SECRET_KEY.search(key) or _SECRET_VALUE.match(value):
        return REDACTED
    return value


def parse_variants(texts: Iterable[str]) -> tuple[Variant, ...]:
    """`NAME:KEY=VALUE` texts as variants, in the order their names first appear; the same name
    again adds its variables. UsageError (param "variants") naming what is wrong."""
    found: dict[str, dict[str, str]] = {}
    for text in texts:
        name, sep, assignment = text.partition(":")
        if not sep or not name:
            raise UsageError(f"{SYNTAX}: {text!r} has no name", param="variants")
        if not _NAME.fullmatch(name):
            raise UsageError(
                f"a variant's name is letters, digits, '.', '_' or '-' (at most 40): {name!r}",
                param="variants",
            )
        env = found.setdefault(name, {})
        if not assignment:
            continue  # NAME: alone, the control
        key, eq, value = assignment.partition("=")
        if not eq:
            raise UsageError(f"{SYNTAX}: {text!r} has no '='", param="variants")
        _check_key(key, text)
        if key in env and env[key] != value:
            raise UsageError(
                f"variant {name!r} sets {key} twice, to {redacted(key, env[key])!r} and "
                f"{redacted(key, value)!r}: give each meaning its own name",
                param="variants",
            )
        env[key] = value
    return tuple(Variant(name, tuple(env.items())) for name, env in found.items())


def _check_key(key: str, text: str) -> None:
    if not _KEY.fullmatch(key):
        raise UsageError(
            f"not an environment variable's name: {key!r} in {text!r}", param="variants"
        )
    if key.upper().startswith(RESERVED_PREFIXES):
        raise UsageError(
            f"{key} is the harness's own: how it serves your app is set by its options, not by "
            "a variant",
            param="variants",
        )
