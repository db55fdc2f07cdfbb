"""Instrumentation that patches an app from outside (issue 34): the example apps of
examples/instrumentation with the real Sentry, OpenTelemetry and Prometheus packages; `harness
layers` names what is not a layer and says a variant measures it; nothing leaves the machine."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.serving.apps import AppInfo, describe_app
from harness.serving.userapp import instrumentation
from harness.serving.userapp.spec import AppSpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "instrumentation"
FASTAPI = "examples/instrumentation/fastapi_app.py:app"
DJANGO = "examples/instrumentation/django_app.py:application"
# Every switch of the examples off: what each test turns on is then all there is.
ALL_OFF = {"SENTRY": "0", "OTEL": "0", "PROMETHEUS": "0"}


def describe(spec: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> AppInfo:
    # The child interpreter that describes the app inherits our environment: the variables a
    # variant would set.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return describe_app(AppSpec(spec, app_dir=str(ROOT)))


def by_name(info: AppInfo) -> dict[str, dict[str, str]]:
    return {found["name"]: found for found in info.instrumentation}


def test_sentry_and_the_tracer_provider_are_named_and_the_middlewares_are_layers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = describe(FASTAPI, monkeypatch, TRACES="0.1", OTEL_SAMPLER_RATIO="0.01")
    found = by_name(info)
    assert set(found) == {"Sentry", "OpenTelemetry"}
    sentry = found["Sentry"]["detail"]
    assert "traces_sample_rate=0.1" in sentry
    # The integrations that patch the framework this app runs on.
    assert "fastapi" in sentry and "starlette" in sentry
    otel = found["OpenTelemetry"]
    assert otel["package"] == "opentelemetry-sdk"
    assert "TraceIdRatioBased{0.01}" in otel["detail"]
    assert "BatchSpanProcessor(DropExporter)" in otel["detail"]
    # OpenTelemetry's and Prometheus's middlewares are layers: -m toggles them.
    assert info.layer_names == (
        "OpenTelemetryMiddleware",
        "PrometheusInstrumentatorMiddleware",
        "CORSMiddleware",
        "GZipMiddleware",
    )


def test_what_the_app_is_configured_without_is_not_named(monkeypatch: pytest.MonkeyPatch) -> None:
    info = describe(FASTAPI, monkeypatch, **ALL_OFF)
    assert info.instrumentation == ()
    assert info.layer_names == ("CORSMiddleware", "GZipMiddleware")
    # Sentry without integrations is still an active client: named, with none.
    info = describe(FASTAPI, monkeypatch, SENTRY="1", SENTRY_INTEGRATIONS="none")
    assert by_name(info)["Sentry"]["detail"] == "an active client; tracing off; no integrations"


def test_sentry_without_a_dsn_is_named_and_sentry_imported_only_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # init() without a DSN sends nothing, and its integrations patch FastAPI all the same.
    (tmp_path / "nodsn.py").write_text(
        "import sentry_sdk\nsentry_sdk.init()\nfrom fastapi import FastAPI\napp = FastAPI()\n"
    )
    (tmp_path / "imported.py").write_text(
        "import sentry_sdk\nfrom fastapi import FastAPI\napp = FastAPI()\n"
    )
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    info = describe_app(AppSpec("nodsn.py:app", app_dir=str(tmp_path)))
    detail = by_name(info)["Sentry"]["detail"]
    assert detail.startswith("a client without a DSN; tracing off; integrations: ")
    assert "fastapi" in detail
    info = describe_app(AppSpec("imported.py:app", app_dir=str(tmp_path)))
    assert info.instrumentation == ()


def test_the_django_instrumentor_and_its_middleware(monkeypatch: pytest.MonkeyPatch) -> None:
    info = describe(DJANGO, monkeypatch, SENTRY="0", OTEL="1")
    found = by_name(info)
    assert set(found) == {"DjangoInstrumentor", "OpenTelemetry"}
    assert found["DjangoInstrumentor"]["package"] == "opentelemetry-instrumentation-django"
    # DjangoInstrumentor puts its middleware first in MIDDLEWARE: a layer, outermost.
    assert info.layer_names[0] == "_DjangoMiddleware"
    info = describe(DJANGO, monkeypatch, SENTRY="1", OTEL="0")
    assert set(by_name(info)) == {"Sentry"}
    assert "django" in by_name(info)["Sentry"]["detail"]


def test_harness_layers_says_what_is_not_a_layer_and_that_a_variant_measures_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("TRACES", "1.0")
    result = CliRunner().invoke(main, ["layers", "--app", FASTAPI])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "not a layer: Sentry (sentry-sdk 2." in text
    assert "traces_sample_rate=1" in text
    assert "not a layer: OpenTelemetry (opentelemetry-sdk 1." in text
    assert "--variant NAME:KEY=VALUE" in text
    result = CliRunner().invoke(main, ["layers", "--app", FASTAPI, "--json"])
    assert result.exit_code == 0, result.output
    names = [found["name"] for found in json.loads(result.output)["instrumentation"]]
    assert names == ["Sentry", "OpenTelemetry"]
    monkeypatch.setenv("SENTRY", "0")
    monkeypatch.setenv("OTEL", "0")
    result = CliRunner().invoke(main, ["layers", "--app", FASTAPI])
    assert "not a layer" not in result.output and "--variant" not in result.output


def test_an_agent_found_imported_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    before = instrumentation.found()
    monkeypatch.setitem(sys.modules, "ddtrace", types.ModuleType("ddtrace"))
    added = [f for f in instrumentation.found() if f not in before]
    assert added == [
        {"name": "ddtrace", "package": "ddtrace", "detail": "imported (not inspected)"}
    ]


# The app driven in a child process (Sentry and OpenTelemetry patch the process they run in):
# every request goes through, the transport and the exporter are handed what the SDKs make, and
# no socket connects anywhere.
DRIVE = """\
import asyncio, json, socket, sys
sys.path.insert(0, sys.argv[1])
connected = []
real_connect = socket.socket.connect
def connect(self, address):
    connected.append(repr(address))
    return real_connect(self, address)
socket.socket.connect = connect

import fastapi_app
from sentry_sdk.transport import Transport
envelopes = []
for cls in Transport.__subclasses__():
    if cls.__name__ == "DropTransport":
        real = cls.capture_envelope
        cls.capture_envelope = lambda self, e, real=real: (
            envelopes.extend(item.type for item in e.items), real(self, e))
spans = []
from opentelemetry.sdk.trace.export import SpanExporter
for cls in SpanExporter.__subclasses__():
    if cls.__name__ == "DropExporter":
        real_export = cls.export
        cls.export = lambda self, s, real=real_export: (spans.extend(s), real(self, s))[1]

async def one(path):
    sent = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"127.0.0.1")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await fastapi_app.app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

async def main():
    return [await one(p) for p in ("/healthz", "/items/3", "/healthz")]

answers = asyncio.run(main())
import sentry_sdk
sentry_sdk.flush()
from opentelemetry import trace
trace.get_tracer_provider().force_flush()
print(json.dumps({"answers": [[s, b.decode()] for s, b in answers],
                  "items": envelopes, "spans": len(spans), "connected": connected}))
"""


def drive(**env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", DRIVE, str(EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_example_answers_and_nothing_leaves_the_machine() -> None:
    traced = drive(TRACES="1.0", OTEL_PROCESSOR="simple")
    assert traced["answers"] == [
        [200, '{"status":"ok"}'],
        [200, '{"id":3,"name":"item 3","price":9.5,"q":null}'],
        [200, '{"status":"ok"}'],
    ]
    # A transaction per request reached the transport, and spans the exporter (the server span
    # and, by default, one per receive and send): both dropped them.
    assert traced["items"].count("transaction") == 3
    assert traced["spans"] >= 3 * 2
    assert traced["connected"] == []
    # Tracing off: no transaction; exclude_spans leaves the server span alone.
    quiet = drive(TRACES="none", OTEL_PROCESSOR="simple", OTEL_EXCLUDE_SPANS="receive,send")
    assert "transaction" not in quiet["items"]
    assert quiet["spans"] == 3
    assert quiet["connected"] == []


def test_a_value_the_example_cannot_read_names_the_variable() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(EXAMPLES)!r}); import fastapi_app",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRACES": "often"},
    )
    assert done.returncode != 0
    assert "ValueError: TRACES='often': a rate between 0 and 1, or none" in done.stderr
