"""Extra middlewares, added innermost: one given by import path, or the project's own `spin:N`.

A middleware of the wrong interface is refused before anything is served: told from its class's
`__call__` or aiohttp's mark where possible, else by building it once around a stub app.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from harness.serving.userapp.interface import (
    Interface,
    interface_of,
    is_coroutine_function,
    name_of,
    takes,
)
from harness.serving.userapp.spec import (
    AppLoadError,
    close_awaitable,
    describe_exception,
    import_object,
)


async def _stub_asgi(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
    return None


def _stub_wsgi(environ: Any, start_response: Any) -> Iterable[bytes]:  # pragma: no cover
    return []


def middleware_interface(mw: Any) -> Interface | None:
    """The interface of a middleware, told without building it where possible: aiohttp's mark,
    or the class's __call__ (async: ASGI; (environ, start_response): WSGI). A factory function is
    built around a stub of each interface in turn and what it returns is classified."""
    if getattr(mw, "__middleware_version__", None) == 1:
        return "aiohttp"
    if inspect.isclass(mw):
        call = next((vars(k)["__call__"] for k in mw.__mro__[:-1] if "__call__" in vars(k)), None)
        if call is None:
            return None
        if is_coroutine_function(call):
            return "asgi" if takes(call, 4) else None  # self, scope, receive, send
        return "wsgi" if takes(call, 3) else None  # self, environ, start_response
    return None


def check_middleware(mw: Any, interface: Interface) -> None:
    """Raise AppLoadError unless mw can be the innermost middleware of an app of `interface`."""
    name = name_of(mw)
    if not callable(mw):
        raise AppLoadError(f"extra middleware {name} is a {type(mw).__name__}, not callable")
    found = middleware_interface(mw)
    if interface == "aiohttp":
        if found == "aiohttp":
            return
        if found is not None:
            raise AppLoadError(f"extra middleware {name} is {found.upper()}; this app is aiohttp")
        if is_coroutine_function(mw) and takes(mw, 2):
            raise AppLoadError(
                f"extra middleware {name} is not marked @web.middleware: aiohttp would call it "
                "old-style, as (app, handler); decorate it"
            )
        raise AppLoadError(f"extra middleware {name} is not an aiohttp @web.middleware function")
    if found == "aiohttp":
        raise AppLoadError(
            f"extra middleware {name} is an aiohttp middleware; this app is {interface.upper()}"
        )
    if found is not None and found != interface:
        raise AppLoadError(
            f"extra middleware {name} is {found.upper()}; this app is {interface.upper()}"
        )
    probe = wrap(mw, _stub_asgi if interface == "asgi" else _stub_wsgi, interface)
    del probe


def wrap(mw: Any, inner: Any, interface: Interface) -> Any:
    """mw(inner), checked to be an app of `interface`."""
    name = name_of(mw)
    try:
        wrapped = mw(inner)
    except Exception as exc:
        raise AppLoadError(
            f"extra middleware {name}(app) raised {describe_exception(exc)}"
        ) from None
    if inspect.isawaitable(wrapped):
        close_awaitable(wrapped)
        raise AppLoadError(f"extra middleware {name}(app) returned an awaitable, not an app")
    found = interface_of(wrapped)
    if found != interface:
        got = found.upper() if found else f"a {type(wrapped).__name__} that is not an app"
        raise AppLoadError(
            f"extra middleware {name}(app) gave {got}; this app is {interface.upper()}"
        )
    return wrapped


def is_known(name: str) -> bool:
    return name.startswith(("spin:", "work:"))


def load_extra(name: str, interface: Interface, app_dir: str | None = None) -> Any:
    """The middleware `name` gives: `spin:N` and `work:N` are the project's own middlewares of
    known cost, for `interface`; anything else is an import spec (`pkg.mod:Name`,
    `path/to/mw.py:Name`)."""
    if is_known(name):
        return known_cost_middleware(name, interface)
    return import_object(name, app_dir)


def known_cost_middleware(name: str, interface: Interface) -> Any:
    # The project's `middleware` package is imported only here, once the user's app is loaded:
    # an app with a top-level package of its own called `middleware` must import first.
    import functools

    from middleware.stack import known_layer

    kind, amount = known_layer(name)
    if interface == "aiohttp":
        from middleware.aiohttp import known_cost

        return known_cost(kind, amount)
    if interface == "asgi":
        from middleware.asgi import KnownCostMiddleware as AsgiKnownCost

        return functools.partial(AsgiKnownCost, kind=kind, amount=amount)
    from middleware.wsgi import KnownCostMiddleware as WsgiKnownCost

    return functools.partial(WsgiKnownCost, kind=kind, amount=amount)
