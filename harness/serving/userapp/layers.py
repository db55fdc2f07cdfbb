"""An app's own middleware layers: listed in its order, and a subset kept in place.

Starlette/FastAPI: `app.user_middleware` (rebuilt lazily from the list); Flask: the wrappers
assigned to `app.wsgi_app` and the request hooks (`before_request`, `after_request`,
`teardown_request`, then `teardown_appcontext`); aiohttp: `app.middlewares` (until frozen); Django:
`settings.MIDDLEWARE` (userapp.django_project); any app: the wrapper objects around it. Each is
named by its class or function; a repeat gets `#2`.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.serving.userapp import django_project
from harness.serving.userapp.django_project import DjangoExtra, is_django_handler
from harness.serving.userapp.extra import check_middleware, load_extra, middleware_interface, wrap
from harness.serving.userapp.interface import (
    Interface,
    is_aiohttp_app,
    is_flask,
    is_starlette,
    name_of,
)
from harness.serving.userapp.spec import AppLoadError, import_object, require_interface
from harness.serving.userapp.wrappers import Chain, relink, walk

# Flask's per-request hook tables: {blueprint name or None: [functions]} ...
FLASK_HOOKS: tuple[str, ...] = (
    "before_request_funcs",
    "after_request_funcs",
    "teardown_request_funcs",
)
# ... and the app context's teardown functions, a plain list (Flask-SQLAlchemy's session removal).
FLASK_APPCONTEXT_HOOKS = "teardown_appcontext_funcs"


@dataclass(frozen=True)
class Layer:
    name: str  # class or function name; a repeat gets `#2`, `#3`
    # wrapper | user_middleware | before_request | after_request | teardown_request | aiohttp
    kind: str
    scope: str = ""  # a Flask blueprint's name for its own hooks; "" when app-wide
    detail: str = ""  # what else tells it apart (arguments, old-style, ...)
    # The classes it inherits its code from (BaseHTTPMiddleware, ...): a profile's frames of
    # that code are this layer's when no other layer of the set shares the base.
    bases: tuple[str, ...] = ()


def bases_of(obj: Any) -> tuple[str, ...]:
    """The classes `obj` (a class, or an instance's class) inherits from, as `module:Name`
    (`starlette.middleware.base:BaseHTTPMiddleware`): a profile gives their code to the layer."""
    cls = obj if inspect.isclass(obj) else type(obj)
    return tuple(f"{k.__module__}:{k.__name__}" for k in cls.__mro__[1:] if k is not object)


def _middleware_name(m: Any) -> str:
    """A Starlette `Middleware(cls, *args, **kwargs)` entry's name. A BaseHTTPMiddleware made
    from a function (FastAPI's `@app.middleware("http")`) is named after the function."""
    cls, args, kwargs = m
    base = sys.modules.get("starlette.middleware.base")
    if base is not None and cls is base.BaseHTTPMiddleware:
        dispatch = kwargs.get("dispatch", args[0] if args else None)
        if dispatch is not None:
            return name_of(dispatch)
    return name_of(cls)


def _middleware_detail(m: Any) -> str:
    _, args, kwargs = m
    shown = [repr(a) for a in args] + [
        f"{k}={name_of(v) if callable(v) else repr(v)}" for k, v in kwargs.items()
    ]
    return ", ".join(shown)


def unique_names(names: Iterable[str]) -> list[str]:
    counts: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        counts[name] = counts.get(name, 0) + 1
        out.append(name if counts[name] == 1 else f"{name}#{counts[name]}")
    return out


@dataclass
class _Slot:
    name: str
    kind: str
    scope: str = ""
    detail: str = ""
    bases: tuple[str, ...] = ()


class Stack:
    """The toggleable layers of a loaded app, and how to rebuild it with a subset plus an extra.

    Built once per app: rebuild() splices and mutates the app in place (it is loaded fresh in each
    server process), so call it at most once.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.interface: Interface = require_interface(app, "the app")
        self.top = app
        if self.interface == "aiohttp":
            self.outer = Chain([], app)
        else:
            self.outer = walk(app, self.interface, _is_framework_app)
        self.framework = self.outer.leaf
        self.flask_chain: Chain | None = None
        if is_flask(self.framework):
            flask_app = self.framework
            top = flask_app.__dict__.get("wsgi_app", flask_app.wsgi_app)
            self.flask_chain = walk(
                top, "wsgi", functools.partial(_is_flask_own_wsgi_app, flask_app)
            )

    # -- listing --------------------------------------------------------------------------------

    def _slots(self) -> list[_Slot]:
        slots = [_Slot(name_of(w), "wrapper", bases=bases_of(w)) for w, _ in self.outer.wrappers]
        fw = self.framework
        if is_starlette(fw):
            slots += [
                _Slot(
                    _middleware_name(m),
                    "user_middleware",
                    detail=_middleware_detail(m),
                    bases=bases_of(m.cls),
                )
                for m in fw.user_middleware
            ]
        elif is_flask(fw):
            assert self.flask_chain is not None
            slots += [
                _Slot(name_of(w), "wrapper", detail="app.wsgi_app", bases=bases_of(w))
                for w, _ in self.flask_chain.wrappers
            ]
            for kind, scope, funcs in flask_hooks(fw):
                slots += [_Slot(name_of(f), kind, scope) for f in funcs]
        elif is_django_handler(fw):
            slots += [
                _Slot(
                    e.name,
                    "MIDDLEWARE",
                    detail=django_project.detail(e, self.interface),
                    bases=e.bases,
                )
                for e in django_project.entries()
            ]
        elif is_aiohttp_app(fw):
            slots += [
                _Slot(
                    name_of(m),
                    "aiohttp",
                    detail="" if getattr(m, "__middleware_version__", None) == 1 else "old-style",
                )
                for m in fw.middlewares
            ]
        return slots

    def layers(self) -> list[Layer]:
        slots = self._slots()
        names = unique_names(s.name for s in slots)
        return [
            Layer(n, s.kind, s.scope, s.detail, s.bases) for n, s in zip(names, slots, strict=True)
        ]

    def names(self) -> list[str]:
        return [layer.name for layer in self.layers()]

    def untoggled(self) -> list[str]:
        """Middleware found in the app that is not one of its layers: it stays, whatever is
        chosen."""
        if is_django_handler(self.framework):
            return django_project.untoggled()
        return _untoggled(self.framework)

    def problem(self) -> str | None:
        """Why the app, as configured, cannot answer the harness's requests; None when it can."""
        return django_project.check_hosts() if is_django_handler(self.framework) else None

    # -- extras ---------------------------------------------------------------------------------

    def load_extra(self, name: str, app_dir: str | None) -> Any:
        """The extra middleware `name` gives, in this app's terms: in a Django project, `spin:N`
        is the project's own Django middleware of known cost, and a middleware by import path that
        is neither WSGI nor ASGI is a Django middleware (added to MIDDLEWARE, innermost)."""
        if not is_django_handler(self.framework):
            return load_extra(name, self.interface, app_dir)
        if name.startswith(("spin:", "work:")):
            from middleware.stack import known_layer  # after the app: see extra.py

            return django_project.known_cost_extra(*known_layer(name))
        mw = import_object(name, app_dir)
        if middleware_interface(mw) is not None:
            return mw  # WSGI/ASGI: it wraps the handler
        extra = django_project.import_path_extra(mw)
        if extra is None:
            raise AppLoadError(
                f"extra middleware {name} is not a Django middleware (a class or function at the "
                "top of its module, taking get_response), nor WSGI/ASGI"
            )
        return extra

    def check_extra(self, extra: Any) -> None:
        if not isinstance(extra, DjangoExtra):
            check_middleware(extra, self.interface)

    # -- rebuilding -----------------------------------------------------------------------------

    def keep_mask(self, keep: Collection[str] | None) -> list[bool]:
        names = self.names()
        if keep is None:
            return [True] * len(names)
        unknown = sorted(set(keep) - set(names))
        if unknown:
            valid = ", ".join(names) or "(the app has no layers)"
            raise AppLoadError(f"unknown layer(s) {', '.join(unknown)}; this app has: {valid}")
        return [name in keep for name in names]

    def rebuild(self, keep: Collection[str] | None = None, extras: Sequence[Any] = ()) -> Any:
        """Keep only the named layers (None: all), in the app's order, and add `extras` inside
        them, the last innermost. Returns the object to serve."""
        mask = self.keep_mask(keep)
        for extra in extras:
            self.check_extra(extra)
        n_outer = len(self.outer.wrappers)
        outer_keep, inner_keep = mask[:n_outer], mask[n_outer:]
        fw = self.framework
        if is_starlette(fw):
            _rebuild_starlette(fw, inner_keep, extras)
            leaf = fw
        elif is_flask(fw):
            assert self.flask_chain is not None
            _rebuild_flask(fw, self.flask_chain, inner_keep, extras)
            leaf = fw
        elif is_aiohttp_app(fw):
            _rebuild_aiohttp(fw, inner_keep, extras)
            return fw
        elif is_django_handler(fw):
            mine = [e for e in extras if isinstance(e, DjangoExtra)]
            django_project.rebuild(fw, inner_keep, mine)
            # A WSGI/ASGI middleware given by path wraps the handler: inside its wrappers.
            leaf = _wrapped(fw, [e for e in extras if e not in mine], self.interface)
        else:  # a plain ASGI/WSGI callable: the extras wrap it
            leaf = _wrapped(fw, extras, self.interface)
        return relink(self.outer, outer_keep, leaf)


def _wrapped(app: Any, extras: Sequence[Any], interface: Interface) -> Any:
    """`app` inside `extras`, the last one innermost."""
    for extra in reversed(extras):
        app = wrap(extra, app, interface)
    return app


def _is_framework_app(obj: Any) -> bool:
    return is_flask(obj) or is_starlette(obj) or is_aiohttp_app(obj) or is_django_handler(obj)


def _is_flask_own_wsgi_app(flask_app: Any, obj: Any) -> bool:
    """Flask's own wsgi_app method, bound to flask_app: where app.wsgi_app wrappers end."""
    return inspect.ismethod(obj) and obj.__self__ is flask_app


def _rebuild_starlette(app: Any, keep: Sequence[bool], extras: Sequence[Any]) -> None:
    from starlette.middleware import Middleware

    kept = [m for m, k in zip(app.user_middleware, keep, strict=True) if k]
    kept += [Middleware(extra) for extra in extras]
    app.user_middleware = kept
    # Starlette >= 0.24 builds the stack lazily on the first call (lifespan or request) and caches
    # it in middleware_stack: None makes the next call build it again from user_middleware. An app
    # whose stack is already built (it has been called, or Starlette < 0.24, which rebuilt it at
    # every add_middleware and never checks for None) gets the new stack built right away.
    app.middleware_stack = None if app.middleware_stack is None else app.build_middleware_stack()


def _rebuild_flask(app: Any, chain: Chain, keep: Sequence[bool], extras: Sequence[Any]) -> None:
    n = len(chain.wrappers)
    own = chain.leaf
    leaf = _wrapped(own, extras, "wsgi")
    top = relink(chain, keep[:n], leaf)
    if top is own:
        app.__dict__.pop("wsgi_app", None)  # no wrapper left: Flask's own method again
    else:
        app.wsgi_app = top
    hook_keep = iter(keep[n:])
    for _, _, funcs in flask_hooks(app):
        funcs[:] = [f for f in funcs if next(hook_keep)]  # in place: Flask reads them per request


def flask_hooks(app: Any) -> list[tuple[str, str, list[Any]]]:
    """(kind, blueprint or "", the list Flask calls) for each hook list, in the app's order:
    before_request, after_request, teardown_request (app-wide first, then each blueprint's own),
    then teardown_appcontext."""
    found: list[tuple[str, str, list[Any]]] = []
    for hooks in FLASK_HOOKS:
        kind = hooks.removesuffix("_funcs")
        table = getattr(app, hooks)
        found += [(kind, scope or "", table[scope]) for scope in sorted(table, key=_app_first)]
    found.append(("teardown_appcontext", "", getattr(app, FLASK_APPCONTEXT_HOOKS)))
    return found


def _app_first(scope: str | None) -> tuple[bool, str]:
    return scope is not None, scope or ""


def _rebuild_aiohttp(app: Any, keep: Sequence[bool], extras: Sequence[Any]) -> None:
    if app.pre_frozen:
        raise AppLoadError(
            "the aiohttp app is already frozen (started, or mounted as a sub-app): "
            "its middlewares can no longer change"
        )
    kept = [m for m, k in zip(app.middlewares, keep, strict=True) if k]
    kept += extras  # the last one is innermost
    app.middlewares[:] = kept


def _untoggled(app: Any) -> list[str]:
    found: list[str] = []
    if is_starlette(app):
        for route in getattr(app, "routes", []):
            sub: Any = getattr(route, "app", None)
            if is_starlette(sub) and sub.user_middleware:
                names = ", ".join(_middleware_name(m) for m in sub.user_middleware)
                found.append(f"app mounted at {route.path}: {names}")
    elif is_aiohttp_app(app):
        for resource in app.router.resources():
            sub_app: Any = getattr(resource, "_app", None)
            if is_aiohttp_app(sub_app) and sub_app.middlewares:
                names = ", ".join(name_of(m) for m in sub_app.middlewares)
                found.append(f"sub-app at {resource.canonical}: {names}")
    return found
