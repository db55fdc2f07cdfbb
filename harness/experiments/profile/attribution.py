"""Which layer holds the CPU: every sample goes to one layer of the request path.

The rule (innermost owner): walk a sample's stack from the leaf towards the root; the first frame
that belongs to a known layer owns the whole sample. Frames of the standard library and of
libraries that are no layer (json, logging, re, ...) own nothing, so their time goes to whoever
called them: `json.dumps` called by the dump middleware counts for `dump`, `socket.send` called
by gunicorn counts for `gunicorn`. A sample with no known frame at all is `other`.

A frame belongs to a layer by its module path (the part py-spy prints: `flask/app.py`), through
the PACKAGES table. Frames of the project's `middleware` package belong to the middleware whose
name (or an ALIAS of it) is spelled in the frame's class, enclosing function, module or own
function name. Shared-logic helpers are called by every adapter, so a helper owns weakly: it
yields to the nearest enclosing adapter frame that names a middleware by class or enclosing
function (`DumpMiddleware.__call__` calling `core.current_request_id()` is dump's time, not
request-id's). A helper reached from the framework or server with no adapter frame in between
keeps its own name, or is `middleware (shared)` if it names none. Both tables are data, so a new
package or spelling is one line.

Instrumentation (Sentry, OpenTelemetry, Prometheus, APM agents) is a kind of its own: its frames
own a sample as a package does, so Sentry's serializer, run inside `FastAPI.__call__` by Sentry's
patch, is Sentry's and not FastAPI's. Inside a layer of the same product (OpenTelemetry's ASGI
middleware calling OpenTelemetry's SDK), they are that layer's: -m measures the layer whole.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.experiments.profile.collapsed import Frame, Stack, Stacks, total_samples
from middleware.stack import ORDER

INSTRUMENTATION = "instrumentation"
KINDS = ("middleware", INSTRUMENTATION, "framework", "app", "server", "other")
SHARED_MIDDLEWARE = "middleware (shared)"
APP = "app"
OTHER = "other"

# Module path prefix (a package `name/` or one file `name/file.py`) -> (layer, kind). The longest
# matching prefix wins, so aiohttp's application layer can be told from its HTTP server. Plain
# libraries (multidict, yarl, anyio, jinja2, ...) are no layer: their time goes to the caller.
PACKAGES: dict[str, tuple[str, str]] = {
    "targets/": (APP, "app"),
    # frameworks (werkzeug is Flask's request/response and routing half)
    "flask/": ("flask", "framework"),
    "werkzeug/": ("flask", "framework"),
    "starlette/": ("starlette", "framework"),
    "fastapi/": ("fastapi", "framework"),
    # Django's handler, request/response and URL resolution; its own middlewares are layers only
    # where a set names them (a user's project: its settings.MIDDLEWARE, by class).
    "django/": ("django", "framework"),
    # Django's sync/async bridge: the thread hops of a sync view or middleware under ASGI.
    "asgiref/": ("asgiref (sync/async)", "framework"),
    # What web.Application adds over aiohttp's low-level server (the raw-aiohttp baseline); the
    # rest of aiohttp is the server both of them run on.
    "aiohttp/web_app.py": ("aiohttp-app", "framework"),
    "aiohttp/web_urldispatcher.py": ("aiohttp-app", "framework"),
    "aiohttp/web_middlewares.py": ("aiohttp-app", "framework"),
    "aiohttp/web_routedef.py": ("aiohttp-app", "framework"),
    "aiohttp/": ("aiohttp-server", "server"),
    # servers and event loops
    "gunicorn/": ("gunicorn", "server"),
    "uvicorn/": ("uvicorn", "server"),
    "uvicorn_worker/": ("uvicorn", "server"),
    "uvloop/": ("event-loop", "server"),
    "asyncio/": ("event-loop", "server"),
    "httptools/": ("httptools", "server"),
    "granian/": ("granian", "server"),
    "hypercorn/": ("hypercorn", "server"),
    "h11/": ("h11", "server"),  # hypercorn's HTTP/1.1 parser, as httptools is uvicorn's
    # instrumentation, by product (profile asks py-spy for full filenames: its short ones drop
    # a namespace package's prefix, and opentelemetry/instrumentation/django/ read `django/`)
    "sentry_sdk/": ("sentry", INSTRUMENTATION),
    "opentelemetry/": ("opentelemetry", INSTRUMENTATION),
    "prometheus_client/": ("prometheus", INSTRUMENTATION),
    "prometheus_fastapi_instrumentator/": ("prometheus", INSTRUMENTATION),
    "ddtrace/": ("datadog", INSTRUMENTATION),
    "datadog/": ("datadog", INSTRUMENTATION),
    "newrelic/": ("newrelic", INSTRUMENTATION),
    "elasticapm/": ("elastic-apm", INSTRUMENTATION),
    "scout_apm/": ("scout-apm", INSTRUMENTATION),
}

MIDDLEWARE_PACKAGE = "middleware/"

# Extra spellings of each middleware's name, as word sequences (names are split into lowercase
# words at `_`, `-`, `.` and camelCase boundaries: `RequestIDMiddleware` -> request id middleware).
# Each name in ORDER also matches itself (`request-id` -> request id, requestid).
ALIASES: dict[str, tuple[str, ...]] = {
    "request-id": ("correlation id", "req id"),
    "logger": ("log", "logging", "access", "accesslog"),
    "recovery": ("recover", "recoverer", "panic"),
    "secure": ("security", "secure headers"),
    "nocache": ("no cache",),
    "cors": ("preflight",),
    "dump": ("dumper", "redact"),
}

# A frame whose name has this word is a middleware adapter, even when it names no middleware.
ADAPTER_WORD = "middleware"

_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Path prefixes up to which py-spy's --full-filenames paths are cut, to get the module path.
_ROOTS_RE = re.compile(r".*/(?:site-packages|dist-packages|lib/python3\.\d+)/")
# The project root: harness/experiments/profile/attribution.py is three packages down.
_PROJECT = str(Path(__file__).resolve().parents[3]) + "/"


@dataclass(frozen=True)
class Owner:
    layer: str
    kind: str


# How firmly a frame owns a sample (see the module docstring).
FIRM = 2  # a package layer, or a middleware adapter named by class or enclosing function
WEAK = 1  # a middleware helper named only by its module or its own function name
SHARED = 0  # a middleware helper that names no middleware


@dataclass(frozen=True)
class Claim:
    owner: Owner
    strength: int


def words(identifier: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD_RE.findall(identifier))


def module_path(file: str, app_root: str | None = None) -> str:
    """py-spy's file as a module path: `flask/app.py` stays; a full path loses its prefix (an
    app's own file, under `app_root`, is relative to it, as py-spy's short names are)."""
    if not file.startswith("/"):
        return file
    cut = _ROOTS_RE.sub("", file)  # first: the project's own venv is under the project too
    if cut != file:
        return cut
    for root in (app_root, _PROJECT):
        if root and file.startswith(root):
            return file[len(root) :]
    return cut


@dataclass
class Rules:
    """The attribution tables; `Rules()` is the default set."""

    packages: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(PACKAGES))
    middleware_package: str = MIDDLEWARE_PACKAGE
    middlewares: tuple[str, ...] = ORDER
    aliases: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(ALIASES))
    # A user's app (`--app`): its layers, named by class or function (`Name#2` is a repeat), and
    # the directory its own code lives in (what is no layer there is the app's).
    app_layers: tuple[str, ...] = ()
    app_bases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # layer -> its bases
    app_root: str | None = None
    _spellings: list[tuple[tuple[str, ...], str]] = field(init=False, repr=False)
    _app_layer_of: dict[str, str] = field(init=False, repr=False)
    _app_module_of: dict[str, str] = field(init=False, repr=False)
    _cache: dict[Frame, Claim | None] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        spellings: dict[tuple[str, ...], str] = {}
        for name in self.middlewares:
            spellings[words(name)] = name
            spellings[("".join(words(name)),)] = name
            for alias in self.aliases.get(name, ()):
                spellings[words(alias)] = name
        # Longest spelling first: `log_request_id` is request-id, not logger.
        self._spellings = sorted(spellings.items(), key=lambda item: -len(item[0]))
        self._app_layer_of = {}
        for layer in self.app_layers:
            self._app_layer_of.setdefault(layer.partition("#")[0], layer)
        # Code a layer inherits (BaseHTTPMiddleware.__call__) is that layer's when it is the only
        # one of the set with that base; shared by several, it is theirs together.
        # The code is told by its class name and by its module (BaseHTTPMiddleware's helpers,
        # `_StreamingResponse`, live in starlette/middleware/base.py).
        sharing: dict[str, list[str]] = {}
        for layer in self.app_layers:
            for base in self.app_bases.get(layer, ()):
                sharing.setdefault(base, []).append(layer)
        self._app_module_of = {}
        for base, layers in sharing.items():
            module, _, name = base.rpartition(":")
            owner = layers[0] if len(layers) == 1 else f"{name} (shared)"
            self._app_layer_of.setdefault(name, owner)
            self._app_module_of.setdefault(module.replace(".", "/") + ".py", owner)

    def middleware_in(self, identifier: str) -> str | None:
        """The middleware whose name is spelled in `identifier`, if any."""
        found = words(identifier)
        for spelling, name in self._spellings:
            n = len(spelling)
            if any(found[i : i + n] == spelling for i in range(len(found) - n + 1)):
                return name
        return None

    def claim(self, frame: Frame) -> Claim | None:
        """The layer `frame` belongs to and how firmly, or None for a frame that is no layer."""
        if frame in self._cache:
            return self._cache[frame]
        found = self._classify(frame)
        self._cache[frame] = found
        return found

    def _classify(self, frame: Frame) -> Claim | None:
        # A frame of an app's layer: its class (`PoweredBy.dispatch`) or function names it.
        for part in frame.function.split("."):
            if part in self._app_layer_of:
                return Claim(Owner(self._app_layer_of[part], "middleware"), FIRM)
        path = module_path(frame.file)
        if path in self._app_module_of:
            return Claim(Owner(self._app_module_of[path], "middleware"), FIRM)
        if path.startswith(self.middleware_package):
            return self._middleware_claim(frame, path)
        best = _package_prefix(path, self)
        if not best:
            return self._app_claim(frame.file)
        layer, kind = self.packages[best]
        return Claim(Owner(layer, kind), FIRM)

    def _app_claim(self, file: str) -> Claim | None:
        """A frame of the user's own code: py-spy names files relative to the sys.path entry
        they were found under, and the app's directory is the first of those."""
        if self.app_root is None or file.startswith("<"):
            return None
        full = file if file.startswith("/") else os.path.join(self.app_root, file)
        if full.startswith(self.app_root) and os.path.isfile(full):
            return Claim(Owner(APP, "app"), FIRM)
        return None

    def _middleware_claim(self, frame: Frame, path: str) -> Claim:
        # `Class.method.<locals>.inner`: the class and the enclosing functions are the adapter
        # (firm); the module and the frame's own function name only say what a helper is about.
        *outer, own = frame.function.split(".")
        enclosing = [p for p in outer if p and not p.startswith(("<", "__"))]
        modules = path[len(self.middleware_package) :].removesuffix(".py").split("/")
        for candidates, strength in (
            (reversed(enclosing), FIRM),
            (reversed(modules), WEAK),
            ((own,), WEAK),
        ):
            for candidate in candidates:
                name = self.middleware_in(candidate)
                if name is not None:
                    return Claim(Owner(name, "middleware"), strength)
        if any(ADAPTER_WORD in words(part) for part in frame.function.split(".")):
            # A middleware that does not say which: one adapter shared by several (aiohttp's
            # secure and nocache are one closure). It is not a helper of the middleware around
            # it, so it keeps its samples rather than lend them outwards.
            return Claim(Owner(SHARED_MIDDLEWARE, "middleware"), FIRM)
        return Claim(Owner(SHARED_MIDDLEWARE, "middleware"), SHARED)


DEFAULT_RULES = Rules()


def owner_of(stack: Stack, rules: Rules = DEFAULT_RULES) -> Owner:
    """The owner of one sample (the innermost-owner rule of the module docstring)."""
    helper: Claim | None = None  # the best middleware helper seen so far, innermost first
    for depth in range(len(stack) - 1, -1, -1):
        found = rules.claim(stack[depth])
        if found is None:
            continue
        if found.strength == FIRM:
            # A framework or server frame above a helper means the helper was called from there,
            # not by an adapter: the helper keeps the sample.
            if helper is not None and found.owner.kind != "middleware":
                return helper.owner
            if found.owner.kind == INSTRUMENTATION:
                return _product_layer(stack[:depth], found.owner, rules) or found.owner
            return found.owner
        if helper is None or found.strength > helper.strength:
            helper = found
    return helper.owner if helper is not None else Owner(OTHER, "other")


def _product_layer(outer: Stack, product: Owner, rules: Rules) -> Owner | None:
    """The layer around an instrumentation frame that is code of the same product (OpenTelemetry's
    ASGI middleware around its SDK), or None: the nearest middleware frame outside decides, so
    Sentry's span around CORSMiddleware's call stays Sentry's."""
    for frame in reversed(outer):
        found = rules.claim(frame)
        if found is None or found.owner.kind != "middleware":
            continue
        own = rules.packages.get(_package_prefix(module_path(frame.file), rules))
        return found.owner if own == (product.layer, product.kind) else None
    return None


def _package_prefix(path: str, rules: Rules) -> str:
    """The longest prefix of the packages table `path` starts with ("" for none)."""
    best = ""
    for prefix in rules.packages:
        if path.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return best


@dataclass(frozen=True)
class LayerShare:
    layer: str
    kind: str
    samples: int
    pct: float
    hottest: str  # the leaf function with the most of this layer's samples

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "kind": self.kind,
            "samples": self.samples,
            "pct": round(self.pct, 2),
            "hottest": self.hottest,
        }


def attribute(
    stacks: Stacks, stack: tuple[str, ...] = (), rules: Rules = DEFAULT_RULES
) -> list[LayerShare]:
    """Each layer's share of the samples, largest first. The middlewares of `stack` are listed
    even when they got no sample, so a cheap middleware shows as 0 rather than missing."""
    total = total_samples(stacks)
    samples: Counter[Owner] = Counter()
    leaves: dict[Owner, Counter[str]] = {}
    for frames, count in stacks.items():
        owner = owner_of(frames, rules)
        samples[owner] += count
        leaf = frames[-1].label if frames else "<no Python frame>"
        leaves.setdefault(owner, Counter())[leaf] += count
    for name in stack:
        samples.setdefault(Owner(name, "middleware"), 0)
    order = sorted(samples, key=lambda o: (-samples[o], KINDS.index(o.kind), o.layer))
    return [
        LayerShare(
            layer=owner.layer,
            kind=owner.kind,
            samples=samples[owner],
            pct=100.0 * samples[owner] / total if total else 0.0,
            hottest=leaves[owner].most_common(1)[0][0] if owner in leaves else "",
        )
        for owner in order
    ]


def by_kind(shares: list[LayerShare]) -> dict[str, float]:
    """Percent of samples per kind (middleware, instrumentation, framework, app, server,
    other)."""
    totals = dict.fromkeys(KINDS, 0.0)
    for share in shares:
        totals[share.kind] += share.pct
    return {kind: round(pct, 2) for kind, pct in totals.items()}


def format_layers(shares: list[LayerShare], *, width: int | None = None) -> str:
    lines = [f"{'samples':>7} {'%':>6}  {'kind':<15} {'layer':<20} hottest leaf"]
    for s in shares:
        line = f"{s.samples:>7} {s.pct:>5.2f}%  {s.kind:<15} {s.layer:<20} {s.hottest}"
        lines.append(line if width is None else line[:width])
    kinds = by_kind(shares)
    lines.append("by kind: " + ", ".join(f"{k} {v:.1f}%" for k, v in kinds.items()))
    return "\n".join(lines)
