"""A FastAPI app with the instrumentation most production apps carry: Sentry, OpenTelemetry's ASGI
middleware, prometheus-fastapi-instrumentator, and CORS and GZip. Nothing leaves the machine
(telemetry.py: a transport and an exporter that drop).

Every setting is read from the environment at import, so that a variant serves the same app
configured another way (`--variant NAME:KEY=VALUE`):

    SENTRY, TRACES, SENTRY_INTEGRATIONS, OTEL, OTEL_SAMPLER_RATIO, OTEL_PROCESSOR: telemetry.py
    OTEL_EXCLUDE_SPANS=receive,send
                   the ASGI middleware's exclude_spans: "receive,send", "send", "receive", or
                   empty (default: none excluded, a span for each receive and send)
    PROMETHEUS=1|0 prometheus-fastapi-instrumentator's middleware and /metrics (default 1)

CORS and GZip, OpenTelemetry's and Prometheus's middlewares are layers of the app: -m toggles them
(`harness layers` lists them). Sentry is not a layer: it patches Starlette and FastAPI from
outside, so only a variant takes it away (SENTRY=0).

    harness layers --app examples/instrumentation/fastapi_app.py:app
    harness compare --app examples/instrumentation/fastapi_app.py:app -m none,all \\
        --variant off: --variant on:TRACES=1.0
"""

from __future__ import annotations

import os
from typing import Any, Literal

from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from telemetry import HEALTHZ_BODY, JSON_TYPE, flag, init_sentry, tracer_provider

# Before the app, as Sentry's docs say: its integrations patch the framework's classes.
init_sentry()

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


# `/` too: the path harness requests on an --app by default.
@app.get("/")
@app.get("/healthz")
async def healthz() -> Response:
    return Response(HEALTHZ_BODY, media_type=JSON_TYPE)


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
    return {"id": item_id, "name": f"item {item_id}", "price": 9.5, "q": q}


# add_middleware puts each new one outermost: the order, outermost first, is OpenTelemetry,
# Prometheus, CORS, GZip.
app.add_middleware(GZipMiddleware, minimum_size=1000)
app.add_middleware(
    CORSMiddleware,
    allow_origins=["https://example.com"],
    allow_methods=["GET"],
    allow_headers=["*"],
)

if flag("PROMETHEUS"):
    from prometheus_fastapi_instrumentator import Instrumentator

    Instrumentator().instrument(app).expose(app)  # its middleware, and the /metrics route

provider = tracer_provider()
if provider is not None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    excluded = {p.strip() for p in os.environ.get("OTEL_EXCLUDE_SPANS", "").split(",") if p.strip()}
    if not excluded <= {"receive", "send"}:
        raise ValueError(f"OTEL_EXCLUDE_SPANS={','.join(sorted(excluded))}: receive, send or both")
    spans: list[Literal["receive", "send"]] = [s for s in ("receive", "send") if s in excluded]
    app.add_middleware(OpenTelemetryMiddleware, tracer_provider=provider, exclude_spans=spans)
