"""Import what an import spec names: `package.module:attr` or `path/to/file.py:attr`, with
`--factory` (attr called with no arguments) and `--app-dir` (first on sys.path), as uvicorn spells
them. Every failure a user can cause is an AppLoadError whose message is one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import UsageError
from harness.serving.userapp.interface import (
    Interface,
    interface_of,
    is_coroutine_function,
    not_an_app_reason,
    takes,
)

_FRESH = itertools.count(1)


class AppLoadError(UsageError):
    """A user-facing failure; str() is one line."""


def require_interface(obj: Any, what: str) -> Interface:
    found = interface_of(obj)
    if found is None:
        raise AppLoadError(f"{what} {not_an_app_reason(obj)}")
    return found


@dataclass(frozen=True)
class AppSpec:
    target: str  # `package.module:attr` or `path/to/file.py:attr`
    factory: bool = False  # call attr with no arguments to get the app
    app_dir: str | None = None  # put first on sys.path (None: the current directory)


def _where(exc: BaseException) -> str:
    """`file:line` of the innermost frame of exc's traceback (or of a SyntaxError's source)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    every = list(traceback.extract_tb(exc.__traceback__))
    frames = [f for f in every if not f.filename.startswith("<frozen") and f.filename != __file__]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def describe_exception(exc: BaseException) -> str:
    """The exception's last traceback line (`ValueError: boom`) and where it was raised; a
    Django project's failure in its own terms (django_project.explain)."""
    from harness.serving.userapp.django_project import explain

    said = explain(exc)
    if said is not None:
        return said
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    where = _where(exc)
    return f"{last} (at {where})" if where else last


def split_spec(spec: str) -> tuple[str, str]:
    """`source:attr` split at the last `:` (so a Windows path keeps its drive)."""
    source, sep, attr = spec.rpartition(":")
    if not sep or not source or not attr or not all(p.isidentifier() for p in attr.split(".")):
        raise AppLoadError(f"bad spec {spec!r}: write package.module:attr or path/to/file.py:attr")
    return source, attr


def is_file_source(source: str) -> bool:
    return source.endswith(".py") or "/" in source or os.sep in source


def prepend_path(directory: str) -> None:
    path = str(Path(directory).resolve())
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)


def import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise AppLoadError(
                f"no module named {exc.name!r} (sys.path starts with {sys.path[0]!r})"
            ) from None
        raise AppLoadError(f"importing {name!r} failed: {describe_exception(exc)}") from None
    except (Exception, SystemExit) as exc:
        raise AppLoadError(f"importing {name!r} failed: {describe_exception(exc)}") from None


def _file_module_name(path: Path) -> str:
    """The file's stem, unless that name is taken or would shadow an importable module."""
    stem = path.stem
    if stem.isidentifier() and stem not in sys.modules:
        try:
            found = importlib.util.find_spec(stem)
        except (ImportError, ValueError):
            found = None
        if found is None or (found.origin and Path(found.origin).resolve() == path):
            return stem
    return f"_mwbench_app_{abs(hash(str(path))):x}"


def import_file(source: str, base: str, fresh: bool = False) -> ModuleType:
    """Import a .py file by path (a relative one is relative to `base`, the app dir); its folder
    goes on sys.path (after the app dir) so that it can import its neighbours, as `python file.py`
    would. `fresh`: a new module object even if the file was imported before."""
    path = (Path(base) / source).resolve()
    if not path.is_file():
        raise AppLoadError(f"no such file: {source}")
    for module in [] if fresh else list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == path:
            return module
    name = f"_mwbench_app_{next(_FRESH)}" if fresh else _file_module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {source}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    if str(path.parent) not in sys.path:
        sys.path.insert(1 if sys.path else 0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise AppLoadError(f"importing {source} failed: {describe_exception(exc)}") from None
    return module


def _app_names(module: ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and not inspect.isclass(value)
        and type(value).__module__ not in ("typing", "types", "collections.abc")  # aliases
        and interface_of(value)
    )


def get_attr(module: ModuleType, attr: str, where: str) -> Any:
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            apps = _app_names(module)
            hint = f"; apps there: {', '.join(apps)}" if apps else ""
            raise AppLoadError(f"{where} has no attribute {attr!r}{hint}") from None
    return obj


def import_object(spec: str, app_dir: str | None = None, fresh: bool = False) -> Any:
    """The object `spec` names. app_dir (default: the current directory) goes first on sys.path.
    `fresh`: the module is executed again, so its app is a new object (in-process timing builds
    one app per middleware set, and choosing a set changes the app in place)."""
    source, attr = split_spec(spec)
    base = app_dir if app_dir is not None else os.getcwd()
    prepend_path(base)
    if is_file_source(source):
        return get_attr(import_file(source, base, fresh), attr, source)
    if fresh:
        sys.modules.pop(source, None)
    return get_attr(import_module(source), attr, f"module {source!r}")


def check_factory(obj: Any, target: str) -> None:
    if not callable(obj):
        raise AppLoadError(f"{target} is a {type(obj).__name__}, not a factory", param="factory")
    if interface_of(obj) is not None and not takes(obj, 0):
        raise AppLoadError(f"{target} is already an app, not a factory", param="factory")
    if not takes(obj, 0):
        try:
            sig = str(inspect.signature(obj))
        except (TypeError, ValueError):
            sig = "(...)"
        raise AppLoadError(f"factory {target} needs arguments {sig}; it is called with none")


def _call_factory(obj: Any, target: str) -> Any:
    try:
        return obj()
    except (Exception, SystemExit) as exc:
        raise AppLoadError(f"factory {target}() raised {describe_exception(exc)}") from None


def _checked(app: Any, spec: AppSpec) -> Any:
    if app is None:
        raise AppLoadError(f"factory {spec.target}() returned None")
    require_interface(
        app, f"factory {spec.target}() returned an object that" if spec.factory else spec.target
    )
    return app


def is_async_factory(spec: AppSpec, obj: Any) -> bool:
    return spec.factory and is_coroutine_function(obj)


def load_app(spec: AppSpec, fresh: bool = False) -> Any:
    """The app spec names (its factory called, with spec.factory); async factories: see
    load_app_async."""
    return app_from(import_object(spec.target, spec.app_dir, fresh), spec)


def app_from(obj: Any, spec: AppSpec) -> Any:
    """The app `obj` is, or with spec.factory makes: checked to be an app we can serve."""
    if not spec.factory:
        if interface_of(obj) is None:
            raise AppLoadError(f"{spec.target} {not_an_app_reason(obj)}")
        return obj
    check_factory(obj, spec.target)
    if is_coroutine_function(obj):
        raise AppLoadError(f"{spec.target} is an async factory: only aiohttp apps can use one")
    app = _call_factory(obj, spec.target)
    if inspect.isawaitable(app):
        close_awaitable(app)
        raise AppLoadError(f"factory {spec.target}() returned an awaitable: only aiohttp apps can")
    return _checked(app, spec)


async def load_app_async(spec: AppSpec) -> Any:
    """load_app, awaiting an async factory (aiohttp's `async def init_app()` pattern)."""
    obj = import_object(spec.target, spec.app_dir)
    if not spec.factory:
        return app_from(obj, spec)
    check_factory(obj, spec.target)
    app = _call_factory(obj, spec.target)
    if inspect.isawaitable(app):
        try:
            app = await app
        except Exception as exc:
            raise AppLoadError(
                f"factory {spec.target}() raised {describe_exception(exc)}"
            ) from None
    return _checked(app, spec)


def close_awaitable(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
