"""Sentry and OpenTelemetry set up as an app does, from environment variables, with a transport and
an exporter that drop what they are given: the SDKs do all their work up to the network, and
nothing leaves the machine. fastapi_app.py and django_app.py import it (it sits beside them).

    SENTRY=1|0                 sentry_sdk.init(...) at all (default 1)
    TRACES=none|RATE           Sentry's traces_sample_rate: none (default) leaves it unset, as a
                               plain init() does (no transactions); 0, 0.1, 1.0 ... set it
    SENTRY_INTEGRATIONS=auto|empty|none
                               auto (default): Sentry's default and auto-enabling integrations
                               (Starlette, FastAPI, Django among them, patched from outside the
                               app); empty: integrations=[], which keeps those defaults all the
                               same; none: default_integrations=False, no integration at all
    OTEL=1|0                   OpenTelemetry: a TracerProvider and the framework's
                               instrumentation (default 1)
    OTEL_SAMPLER_RATIO=RATIO   a ParentBased(TraceIdRatioBased(RATIO)) sampler, 0.01 for 1%;
                               unset (default): the SDK's own (always on, or OTEL_TRACES_SAMPLER)
    OTEL_PROCESSOR=batch|simple
                               BatchSpanProcessor (default: a background thread exports) or
                               SimpleSpanProcessor (exports at each span's end, in the request)

A value it cannot read is a ValueError at import: the server fails to start, naming it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

HEALTHZ_BODY = b'{"status":"ok"}'  # the answer every mwbench target gives (SPEC section 2)
JSON_TYPE = "application/json"
# The SDK is active only with a DSN; the transport never reads it, nothing is sent to it.
FAKE_DSN = "https://public@127.0.0.1/1"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def flag(name: str, default: bool = True) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value not in _TRUE + _FALSE:
        raise ValueError(f"{name}={value!r}: write 1 or 0")
    return value in _TRUE


def rate(name: str) -> float | None:
    """A sample rate between 0 and 1 from the environment; None when unset or `none`."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "none"):
        return None
    try:
        found = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: a rate between 0 and 1, or none") from None
    if not 0.0 <= found <= 1.0:
        raise ValueError(f"{name}={value}: a rate between 0 and 1, or none")
    return found


def choice(name: str, default: str, valid: Sequence[str]) -> str:
    value = os.environ.get(name, default).strip().lower() or default
    if value not in valid:
        raise ValueError(f"{name}={value!r}: write {' or '.join(valid)}")
    return value


def init_sentry() -> bool:
    """sentry_sdk.init as SENTRY, TRACES and SENTRY_INTEGRATIONS say; False when SENTRY=0."""
    if not flag("SENTRY"):
        return False
    import sentry_sdk
    from sentry_sdk.envelope import Envelope
    from sentry_sdk.transport import Transport

    class DropTransport(Transport):
        """Takes every envelope (errors, transactions) and sends none."""

        def capture_envelope(self, envelope: Envelope) -> None:
            pass

    options: dict[str, Any] = {}
    integrations = choice("SENTRY_INTEGRATIONS", "auto", ("auto", "empty", "none"))
    if integrations == "empty":
        options["integrations"] = []
    elif integrations == "none":
        options["default_integrations"] = False  # the auto-enabling ones go with them
    traces = rate("TRACES")
    if traces is not None:
        options["traces_sample_rate"] = traces
    sentry_sdk.init(dsn=FAKE_DSN, transport=DropTransport, **options)
    return True


def tracer_provider() -> TracerProvider | None:
    """A TracerProvider as OTEL, OTEL_SAMPLER_RATIO and OTEL_PROCESSOR say, set as the global one
    (once per process); None when OTEL=0."""
    if not flag("OTEL"):
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class DropExporter(SpanExporter):
        """Takes every finished span and sends none."""

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    ratio = rate("OTEL_SAMPLER_RATIO")
    processor = choice("OTEL_PROCESSOR", "batch", ("batch", "simple"))
    provider = TracerProvider(
        resource=Resource.create({"service.name": "mwbench-example"}),
        sampler=None if ratio is None else ParentBased(TraceIdRatioBased(ratio)),
    )
    exporter = DropExporter()
    provider.add_span_processor(
        BatchSpanProcessor(exporter) if processor == "batch" else SimpleSpanProcessor(exporter)
    )
    # Global, as an app sets it up; once per process: the harness may import the app again to
    # build a second one, and OpenTelemetry refuses to replace a provider (with a warning).
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    return provider
