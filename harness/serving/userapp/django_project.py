"""A user's Django project: its layers are `settings.MIDDLEWARE`, toggled by rebuilding the
handler's middleware chain (`handler.load_middleware`) in the server process, in the project's own
order.

Django is imported only when the app is a Django handler (its modules are then loaded already),
or to explain why a project failed to load.
"""

from __future__ import annotations

import os
import sys
import traceback
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.serving.userapp.interface import Interface, name_of

SETTINGS_ENV = "DJANGO_SETTINGS_MODULE"
LOOPBACK = "127.0.0.1"  # the Host every request of the harness names (wrk: 127.0.0.1:PORT)
# Django's own receivers of the per-request signals: part of Django, not something added.
_OWN_RECEIVERS = ("django.",)


def is_django_handler(obj: Any) -> bool:
    base = sys.modules.get("django.core.handlers.base")
    return base is not None and isinstance(obj, base.BaseHandler)


def is_asgi_handler(obj: Any) -> bool:
    asgi = sys.modules.get("django.core.handlers.asgi")
    return asgi is not None and isinstance(obj, asgi.ASGIHandler)


@dataclass(frozen=True)
class Entry:
    """One entry of settings.MIDDLEWARE, as the layer list shows it."""

    name: str  # class or function name
    path: str  # the dotted path in MIDDLEWARE
    capability: str  # "sync+async", "sync only", "async only"
    bases: tuple[str, ...] = field(default=())
    # Its sync hooks (process_request, ...): under ASGI Django runs each in a thread, even for a
    # sync+async class (MiddlewareMixin's __acall__ wraps them in sync_to_async).
    sync_hooks: tuple[str, ...] = field(default=())


HOOKS = (
    "process_request",
    "process_view",
    "process_exception",
    "process_template_response",
    "process_response",
)


def sync_hooks(mw: Any) -> tuple[str, ...]:
    from asgiref.sync import iscoroutinefunction

    return tuple(
        h
        for h in HOOKS
        if callable(getattr(mw, h, None)) and not iscoroutinefunction(getattr(mw, h))
    )


def capability(mw: Any) -> str:
    can_sync = getattr(mw, "sync_capable", True)
    can_async = getattr(mw, "async_capable", False)
    return {(True, True): "sync+async", (True, False): "sync only"}.get(
        (bool(can_sync), bool(can_async)), "async only"
    )


def entries() -> list[Entry]:
    from django.conf import settings
    from django.utils.module_loading import import_string

    found = []
    for path in settings.MIDDLEWARE:
        mw = import_string(path)  # the handler imported it already: this is a lookup
        # Its bases, as layers.bases_of spells them (MiddlewareMixin: a profile shares its code).
        mro = mw.__mro__[1:-1] if isinstance(mw, type) else ()
        bases = tuple(f"{k.__module__}:{k.__name__}" for k in mro)
        found.append(Entry(name_of(mw), path, capability(mw), bases, sync_hooks(mw)))
    return found


def detail(entry: Entry, interface: Interface) -> str:
    """What `harness layers` says of an entry: its path and whether it can run in the handler's
    mode; a sync-only one under ASGI is where Django hops to a thread (and back)."""
    adapted = ""
    if interface == "asgi" and entry.capability == "sync only":
        adapted = ": Django runs it in a thread (sync_to_async)"
    elif interface == "wsgi" and entry.capability == "async only":
        adapted = ": Django runs it in an event loop (async_to_sync)"
    elif interface == "asgi" and entry.sync_hooks:
        hooks = ", ".join(h.removeprefix("process_") for h in entry.sync_hooks)
        adapted = f", but its sync hooks run in a thread each ({hooks})"
    return f"{entry.capability}{adapted}; {entry.path}"


@dataclass(frozen=True)
class DjangoExtra:
    """A middleware added innermost to a Django project: its MIDDLEWARE path, and the settings it
    reads (the project's own known-cost middleware takes its cost from one)."""

    path: str
    settings: dict[str, Any] = field(default_factory=dict)


def known_cost_extra(kind: str, amount: int) -> DjangoExtra:
    from middleware.django import KNOWN_COST_SETTING, KnownCostMiddleware

    path = f"{KnownCostMiddleware.__module__}.{KnownCostMiddleware.__qualname__}"
    return DjangoExtra(path, {KNOWN_COST_SETTING: (kind, amount)})


def import_path_extra(mw: Any) -> DjangoExtra | None:
    """A Django middleware given by import path (`path/mw.py:Name`): named in MIDDLEWARE by the
    module it was imported as, which Django's import_string then finds in sys.modules. None when
    it cannot be one (not callable, or not at the top of its module)."""
    module, qualname = getattr(mw, "__module__", None), getattr(mw, "__qualname__", "")
    if not callable(mw) or module is None or "." in qualname:
        return None
    return DjangoExtra(f"{module}.{qualname}")


def rebuild(handler: Any, keep: Sequence[bool], extras: Sequence[DjangoExtra]) -> None:
    """settings.MIDDLEWARE with only the kept entries, in their order, and the extras innermost;
    the handler's chain built again from it, in the handler's own mode."""
    from django.conf import settings

    kept = [path for path, k in zip(settings.MIDDLEWARE, keep, strict=True) if k]
    for extra in extras:
        for name, value in extra.settings.items():
            setattr(settings, name, value)
    settings.MIDDLEWARE = [*kept, *(extra.path for extra in extras)]
    if is_asgi_handler(handler):
        handler.load_middleware(is_async=True)
    else:
        handler.load_middleware()


def untoggled() -> list[str]:
    """What runs on every request outside MIDDLEWARE: receivers of request_started and
    request_finished that are not Django's own (instrumentation connects there)."""
    from django.core import signals

    found = []
    for signal_name in ("request_started", "request_finished"):
        signal = getattr(signals, signal_name)
        names = []
        for _, ref, *_ in signal.receivers:
            receiver = ref() if isinstance(ref, weakref.ReferenceType) else ref
            module = getattr(receiver, "__module__", "") or ""
            if receiver is not None and not module.startswith(_OWN_RECEIVERS):
                names.append(f"{module}.{name_of(receiver)}")
        if names:
            found.append(f"{signal_name} receivers (run on every request): {', '.join(names)}")
    return found


def check_hosts() -> str | None:
    """Why Django would answer 400 to the harness's requests (ALLOWED_HOSTS refuses its Host),
    or None. Django checks the Host only when a layer or view asks for it (CommonMiddleware,
    CsrfViewMiddleware do), but a project that refuses its own load is measuring its 400 page."""
    from django.conf import settings
    from django.http.request import validate_host

    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", LOOPBACK, "[::1]"]  # what HttpRequest.get_host allows then
    if validate_host(LOOPBACK, allowed):
        return None
    return (
        f"Django's ALLOWED_HOSTS {allowed!r} refuses {LOOPBACK}, the host every request of the "
        f"harness names: the project would answer 400 (Bad Request); add {LOOPBACK!r} to "
        "ALLOWED_HOSTS (a settings module of its own: --django-settings)"
    )


def _middleware_path(exc: BaseException) -> str | None:
    """The MIDDLEWARE entry Django was loading when `exc` was raised, if it was."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        code = frame.f_code
        if code.co_name == "load_middleware" and code.co_filename.endswith(
            os.path.join("django", "core", "handlers", "base.py")
        ):
            path = frame.f_locals.get("middleware_path")
            return str(path) if path is not None else None
    return None


def explain(exc: BaseException) -> str | None:
    """A Django project's failure to load, said in the project's terms: Django missing, settings
    not configured or not importable, a MIDDLEWARE entry that does not import. None: not one of
    these (the caller says what the exception says)."""
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] == "django":
        return (
            f"Django is not installed in the environment that serves the app ({sys.executable}):"
            " install it there (pip install Django)"
        )
    if "django" not in sys.modules:
        return None
    mw_path = _middleware_path(exc)
    if mw_path is not None:
        return f"the MIDDLEWARE entry {mw_path!r} does not import: {last}"
    module = os.environ.get(SETTINGS_ENV)
    if type(exc).__name__ == "ImproperlyConfigured" and "settings are not configured" in str(exc):
        return (
            f"Django's settings are not configured: set {SETTINGS_ENV} (or --django-settings "
            "MODULE), or call settings.configure() before the app is made"
        )
    if (
        isinstance(exc, ModuleNotFoundError)
        and module
        and exc.name
        and (module == exc.name or module.startswith(exc.name + "."))
    ):
        return (
            f"{SETTINGS_ENV}={module} does not import: no module named {exc.name!r} "
            f"(sys.path starts with {sys.path[0]!r}; --app-dir is the folder that holds it)"
        )
    return None
