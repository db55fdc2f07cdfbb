"""Togglable middleware stacks: shared per-request logic, thin WSGI, ASGI and aiohttp adapters."""

from middleware.stack import ORDER, UnknownMiddleware, parse_sets, parse_stack, stack_name

__all__ = ["ORDER", "UnknownMiddleware", "parse_sets", "parse_stack", "stack_name"]
