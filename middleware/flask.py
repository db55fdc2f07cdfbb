"""Flask adapter (placeholder until the middleware issue lands: only the empty stack)."""

from __future__ import annotations

from typing import Any


def apply(app: Any, stack: tuple[str, ...], log_output: str) -> Any:
    if stack:
        raise NotImplementedError("Flask middlewares are not implemented yet")
    return app
