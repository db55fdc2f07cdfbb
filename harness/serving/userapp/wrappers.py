"""Wrapper chains: middleware objects around an app (`ProxyFix(app.wsgi_app)`, an ASGI class
around an ASGI app), found through the attribute that holds the inner app, and spliced to drop
some of them. Wrappers cannot be rebuilt (their constructor arguments are unknown), only relinked.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.serving.userapp.interface import Interface, interface_of, name_of
from harness.serving.userapp.spec import AppLoadError

# Where a wrapper keeps the app it wraps, in the order they are tried. `_app` is werkzeug's
# ProfilerMiddleware; `__wrapped__` is what functools.wraps leaves (read-only for splicing).
WRAPPED_ATTRS: tuple[str, ...] = ("app", "_app", "wsgi_app", "application", "__wrapped__")
READ_ONLY_ATTRS: frozenset[str] = frozenset({"__wrapped__"})
MAX_DEPTH = 64


@dataclass
class Chain:
    """Wrappers from the outermost in, each with the attribute that holds what it wraps, and the
    innermost app (a framework app, a plain app, or an interface adapter)."""

    wrappers: list[tuple[Any, str]]
    leaf: Any


def _stored(obj: Any, attr: str) -> tuple[bool, Any]:
    """(True, value) when obj itself stores attr (instance __dict__ or __slots__), not its class:
    a method or property named `app` is not a wrapped app."""
    own = getattr(obj, "__dict__", None)
    if isinstance(own, dict) and attr in own:
        return True, own[attr]
    try:
        static = inspect.getattr_static(obj, attr)
    except AttributeError:
        return False, None
    if inspect.ismemberdescriptor(static):  # a __slots__ entry
        try:
            return True, getattr(obj, attr)
        except AttributeError:
            return False, None
    return False, None


def inner_attr(obj: Any) -> str | None:
    """The first of WRAPPED_ATTRS that obj stores and that holds another callable. A function
    is followed through __wrapped__ only: functools.wraps copies the wrapped object's __dict__
    (its `app`, ...) onto the wrapper function, which would skip a layer."""
    attrs = ("__wrapped__",) if inspect.isroutine(obj) else WRAPPED_ATTRS
    for attr in attrs:
        stored, value = _stored(obj, attr)
        if stored and value is not obj and callable(value):
            return attr
    return None


def walk(top: Any, interface: Interface, is_leaf: Callable[[Any], bool]) -> Chain:
    """Follow WRAPPED_ATTRS down from top. Stops at a leaf, at an object with no inner app, or at
    an interface boundary (e.g. an ASGI adapter around a WSGI app: the adapter is the leaf)."""
    wrappers: list[tuple[Any, str]] = []
    current = top
    seen: set[int] = set()
    while not is_leaf(current) and id(current) not in seen and len(wrappers) < MAX_DEPTH:
        seen.add(id(current))
        attr = inner_attr(current)
        if attr is None:
            break
        inner = getattr(current, attr)
        if interface_of(inner) != interface:
            break  # an adapter between interfaces (e.g. ASGI around WSGI) is the leaf
        wrappers.append((current, attr))
        current = inner
    return Chain(wrappers, current)


def relink(chain: Chain, keep: Sequence[bool], leaf: Any) -> Any:
    """Splice the chain so that only the kept wrappers remain, in their order, around leaf;
    returns the new top. Each kept wrapper's attribute is set to the next kept one (or leaf)."""
    kept = [link for link, k in zip(chain.wrappers, keep, strict=True) if k]
    plan: list[tuple[Any, str, Any]] = []
    inner = leaf
    for wrapper, attr in reversed(kept):
        if getattr(wrapper, attr) is not inner:
            plan.append((wrapper, attr, inner))
        inner = wrapper
    for wrapper, attr, _ in plan:  # check every step before changing anything
        if attr in READ_ONLY_ATTRS:
            raise AppLoadError(
                f"cannot change what {name_of(wrapper)} wraps: it reaches its inner app through "
                f"{attr}, which its code does not read (keep the layers just inside it)"
            )
    for wrapper, attr, new in plan:
        try:
            setattr(wrapper, attr, new)
        except (AttributeError, TypeError) as exc:
            raise AppLoadError(f"cannot set {name_of(wrapper)}.{attr}: {exc}") from None
        if getattr(wrapper, attr) is not new:
            raise AppLoadError(f"{name_of(wrapper)}.{attr} did not take the new inner app")
    return inner
