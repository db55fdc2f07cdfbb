"""Instrumentation an app runs with that is not one of its layers: Sentry's integrations and
OpenTelemetry's instrumentors patch the framework from outside the app (Sentry's runs inside
`FastAPI.__call__`), so -m cannot take them away; a variant (the app configured without them)
is how to measure them.

Read after the app is loaded, from what its import set up: only the modules already imported are
looked at (sys.modules), nothing is imported here.
"""

from __future__ import annotations

import sys
from typing import Any

# Agents that patch frameworks and libraries when imported or initialized, by top-level module:
# found imported, they are named, not inspected further.
AGENTS: dict[str, str] = {
    "ddtrace": "ddtrace",
    "newrelic": "newrelic",
    "elasticapm": "elastic-apm",
    "scout_apm": "scout-apm",
}


def found() -> list[dict[str, str]]:
    """Each instrumentation found: its name, the distribution it comes from, what it does."""
    return [*_sentry(), *_opentelemetry(), *_agents()]


def _sentry() -> list[dict[str, str]]:
    sdk: Any = sys.modules.get("sentry_sdk")
    get_client = getattr(sdk, "get_client", None)  # sentry-sdk >= 1.40
    if get_client is None:
        return []
    client = get_client()
    if not client.is_active():  # no init(): a NonRecordingClient
        return []
    integrations = sorted(getattr(client, "integrations", {}) or {})
    options = getattr(client, "options", {}) or {}
    traces = options.get("traces_sample_rate")
    sampler = options.get("traces_sampler")
    tracing = (
        "traces_sampler set"
        if sampler is not None
        else ("tracing off" if traces is None else f"traces_sample_rate={traces:g}")
    )
    patched = f"integrations: {', '.join(integrations)}" if integrations else "no integrations"
    # init() without a DSN sends nothing, and sets up its integrations all the same.
    client_is = "an active client" if options.get("dsn") else "a client without a DSN"
    return [
        {"name": "Sentry", "package": "sentry-sdk", "detail": f"{client_is}; {tracing}; {patched}"}
    ]


def _opentelemetry() -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    instrumentor: Any = sys.modules.get("opentelemetry.instrumentation.instrumentor")
    if instrumentor is not None:
        for cls in _subclasses(instrumentor.BaseInstrumentor):
            instance = cls.__dict__.get("_instance")  # a singleton, made by instrument()
            if instance is not None and instance.is_instrumented_by_opentelemetry:
                out.append(
                    {
                        "name": cls.__name__,
                        "package": _distribution(cls.__module__),
                        "detail": f"instrumented ({cls.__module__})",
                    }
                )
    trace: Any = sys.modules.get("opentelemetry.trace")
    provider = getattr(trace, "_TRACER_PROVIDER", None)  # None: nobody set one (the proxy)
    if provider is not None and type(provider).__name__ != "NoOpTracerProvider":
        out.append(
            {
                "name": "OpenTelemetry",
                "package": _distribution(type(provider).__module__),
                "detail": f"a global {_provider_detail(provider)}",
            }
        )
    return out


def _provider_detail(provider: Any) -> str:
    kind = type(provider).__name__
    parts = []
    sampler = getattr(provider, "sampler", None)
    if sampler is not None:
        # ParentBased's description names all five of its samplers: its root is the choice.
        root = getattr(sampler, "_root", None)
        shown = f"ParentBased({_sampler(root)})" if root is not None else _sampler(sampler)
        parts.append(f"sampler {shown}")
    multi = getattr(provider, "_active_span_processor", None)
    processors = getattr(multi, "_span_processors", ())
    for processor in processors:
        exporter = getattr(processor, "span_exporter", None)
        parts.append(
            type(processor).__name__
            + (f"({type(exporter).__name__})" if exporter is not None else "")
        )
    return f"{kind} ({'; '.join(parts)})" if parts else kind


def _sampler(sampler: Any) -> str:
    describe = getattr(sampler, "get_description", None)
    return str(describe()) if callable(describe) else type(sampler).__name__


def _agents() -> list[dict[str, str]]:
    return [
        {"name": module, "package": package, "detail": "imported (not inspected)"}
        for module, package in AGENTS.items()
        if module in sys.modules
    ]


def _subclasses(cls: Any) -> list[Any]:
    found: list[Any] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return sorted(set(found), key=lambda k: (k.__module__, k.__qualname__))


def _distribution(module: str) -> str:
    """The distribution a module comes from (opentelemetry-instrumentation-django), else its
    top-level package."""
    from importlib import metadata

    top = module.partition(".")[0]
    owners = metadata.packages_distributions().get(top, [])
    # A namespace package (opentelemetry) has many owners: the one whose files hold the module.
    for dist in owners:
        files = metadata.files(dist) or []
        path = module.replace(".", "/")
        if any(str(f).startswith(path + "/") or str(f) == path + ".py" for f in files):
            return dist
    return owners[0] if owners else top
