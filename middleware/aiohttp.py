"""aiohttp adapters (placeholder until the middleware issue lands: only the empty stack)."""

from __future__ import annotations

from typing import Any


def middlewares(stack: tuple[str, ...], log_output: str) -> list[Any]:
    if stack:
        raise NotImplementedError("aiohttp middlewares are not implemented yet")
    return []


def wrap_handler(handler: Any, stack: tuple[str, ...], log_output: str) -> Any:
    if stack:
        raise NotImplementedError("aiohttp middlewares are not implemented yet")
    return handler
