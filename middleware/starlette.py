"""Starlette: the same pure ASGI middleware classes, added with Starlette's own `add_middleware`.

That is how Starlette's users add middleware, and it matters for `recovery`: Starlette always puts
its ServerErrorMiddleware outermost, which answers an exception with its own 500 and re-raises.
Wrapped around the whole Starlette app, our recovery would only ever see a response already
started; added this way it sits inside ServerErrorMiddleware and catches the exception first.
"""

from __future__ import annotations

from starlette.applications import Starlette

from middleware.asgi import layers


def apply(app: Starlette, stack: tuple[str, ...], log_output: str) -> Starlette:
    """`app` with the middlewares of `stack` added, in ORDER (outermost first)."""
    # add_middleware inserts at the front (the last added is outermost): add innermost first.
    for cls, kwargs in reversed(layers(stack, log_output)):
        app.add_middleware(cls, **kwargs)
    return app
