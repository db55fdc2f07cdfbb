"""Apps that cannot be served, for the one-line errors."""

from __future__ import annotations

not_an_app = {"routes": []}


def needs_nothing() -> None:
    return None


def factory_that_raises() -> None:
    raise RuntimeError("no database configured")
