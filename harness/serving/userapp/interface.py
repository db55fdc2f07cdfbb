"""What a loaded object is: a WSGI app, an ASGI 3 app, an aiohttp Application, or none of them.

Frameworks are told by type without importing them (a framework that is not loaded cannot have
made the object); other callables as uvicorn tells them (an async callable taking (scope, receive,
send) is ASGI 3), plus WSGI for a plain callable taking (environ, start_response), which uvicorn
never picks: the server stack follows from this answer.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from typing import Any, Literal

Interface = Literal["asgi", "wsgi", "aiohttp"]


def _instance_of(obj: Any, module: str, cls: str) -> bool:
    """isinstance(obj, module.cls) without importing module (if it isn't, obj can't be one)."""
    mod = sys.modules.get(module)
    return mod is not None and isinstance(obj, getattr(mod, cls))


def is_flask(obj: Any) -> bool:
    return _instance_of(obj, "flask", "Flask")


def is_starlette(obj: Any) -> bool:
    return _instance_of(obj, "starlette.applications", "Starlette")


def is_aiohttp_app(obj: Any) -> bool:
    return _instance_of(obj, "aiohttp.web_app", "Application")


def is_coroutine_function(fn: Any) -> bool:
    # asyncio's also sees the pre-3.12 `_is_coroutine` marker (uvicorn checks it the same way).
    return inspect.iscoroutinefunction(fn) or (
        sys.version_info < (3, 14) and asyncio.iscoroutinefunction(fn)
    )


def _positional_range(fn: Any) -> tuple[int, float] | None:
    """(required, maximum) positional arguments of fn; None when it has no signature."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in sig.parameters.values() if p.kind in kinds]
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values())
    return required, float("inf") if varargs else float(len(params))


def takes(fn: Any, n: int) -> bool:
    found = _positional_range(fn)
    return found is not None and found[0] <= n <= found[1]


def _call_target(obj: Any) -> Any:
    """What runs when obj is called: obj itself for functions, its bound __call__ otherwise."""
    if inspect.isroutine(obj) or isinstance(obj, functools.partial):
        return obj
    return type(obj).__call__.__get__(obj) if callable(obj) else None


def interface_of(obj: Any) -> Interface | None:
    """The interface obj serves, or None when it is not an app we can serve.

    Frameworks by type; other callables as uvicorn does it (an async __call__ or coroutine
    function is ASGI 3), plus WSGI for a plain callable taking (environ, start_response).
    """
    if is_aiohttp_app(obj):
        return "aiohttp"
    if is_flask(obj):
        return "wsgi"
    if is_starlette(obj):
        return "asgi"
    if inspect.isclass(obj):
        # uvicorn's rule: a class with __await__ is an ASGI 3 app instantiated per request with
        # (scope, receive, send). (WSGI app classes exist too, but "has __iter__ and takes two
        # arguments" matches too many ordinary classes to be worth guessing.)
        return "asgi" if hasattr(obj, "__await__") and takes(obj, 3) else None
    target = _call_target(obj)
    if target is None:
        return None
    if is_coroutine_function(target):
        return "asgi" if takes(target, 3) else None
    return "wsgi" if takes(target, 2) else None


def not_an_app_reason(obj: Any) -> str:
    """Why interface_of(obj) is None, with a hint where one helps."""
    kind = type(obj).__name__
    if inspect.isclass(obj):
        hint = "; with --factory it is instantiated with no arguments" if takes(obj, 0) else ""
        return f"is a class, not an app (a middleware class?){hint}"
    target = _call_target(obj) if callable(obj) else None
    if target is None:
        return f"is a {kind}, not an app"
    if inspect.isroutine(obj) and takes(obj, 0):
        return "is a function that takes no arguments: an app factory? add --factory"
    if is_coroutine_function(target):
        return "is an async callable that does not take (scope, receive, send)"
    sig = _signature_text(target)
    if takes(target, 1):
        return f"is a {kind} {sig}: not an app (an ASGI 2 app? only ASGI 3 is supported)"
    return f"is a {kind} {sig}: neither WSGI (environ, start_response) nor ASGI 3"


def _signature_text(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def name_of(obj: Any) -> str:
    """A class's or function's name; an instance's class name; a partial's function's name."""
    if isinstance(obj, functools.partial):
        return name_of(obj.func)
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return obj.__name__
    return type(obj).__name__


def qualified(obj: Any) -> str:
    """module.name of a function or class, module.Class of an instance."""
    named = obj if inspect.isroutine(obj) or inspect.isclass(obj) else type(obj)
    return f"{named.__module__}.{named.__qualname__}"
