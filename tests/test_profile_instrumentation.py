"""The profile names instrumentation (issue 34): Sentry's, OpenTelemetry's and Prometheus's
frames are a kind of their own, inside the framework frames they run in; threads that only wait
are left out of the shares, and said.

The recorded stacks (tests/fixtures/profile/fastapi-instrumented-all.collapsed.txt) are a real
py-spy recording, with full filenames, of examples/instrumentation/fastapi_app.py with TRACES=1.0
(README there says how it was made); its frames keep py-spy's own names and lines.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.profile.attribution import (
    INSTRUMENTATION,
    Owner,
    Rules,
    attribute,
    by_kind,
    format_layers,
    owner_of,
)
from harness.experiments.profile.collapsed import Frame, Stacks, parse_collapsed, read_collapsed
from harness.experiments.profile.flamegraph import COLOURS, render_svg
from harness.experiments.profile.pyspy import record_command
from harness.experiments.profile.reading import short_files
from harness.experiments.profile.render import kind_of_frame
from harness.experiments.profile.top import top_cum
from harness.experiments.profile.waiting import format_waiting, split_waiting, waits

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "tests" / "fixtures" / "profile" / "fastapi-instrumented-all.collapsed.txt"
# Where the recording's paths were rewritten to: the app's directory, with its virtualenv in it.
APP_ROOT = "/srv/app/"
SITE = "/srv/app/.venv/lib/python3.11/site-packages/"
LAYERS = ("OpenTelemetryMiddleware", "PrometheusInstrumentatorMiddleware", "CORSMiddleware",
          "GZipMiddleware")  # fmt: skip
APP_RULES = Rules(app_layers=LAYERS, app_root=APP_ROOT)


def stack(*frames: str) -> tuple[Frame, ...]:
    (found,) = parse_collapsed([";".join(frames) + " 1"])
    return found


@pytest.fixture(scope="module")
def recorded() -> Stacks:
    return short_files(read_collapsed(RECORDED), APP_ROOT)


# -- file names ----------------------------------------------------------------------------------


def test_py_spy_is_asked_for_full_filenames_and_they_are_cut_to_module_paths() -> None:
    assert "--full-filenames" in record_command("py-spy", 1, Path("o"), duration=1, rate=1)
    full = parse_collapsed(
        [
            f"<module> (/usr/lib/python3.11/threading.py:1);"
            f"Tracer.start_span ({SITE}opentelemetry/sdk/trace/__init__.py:1);"
            f"_DjangoMiddleware.__call__ ({SITE}opentelemetry/instrumentation/django/"
            f"middleware/otel_middleware.py:1);"
            f"read_item ({APP_ROOT}fastapi_app.py:3);"
            "<module> (<frozen runpy>:1) 2"
        ]
    )
    (short,) = short_files(full, APP_ROOT)
    assert [f.file for f in short] == [
        "threading.py",
        # whole, where py-spy's own short name is `trace/__init__.py`
        "opentelemetry/sdk/trace/__init__.py",
        # py-spy's short name, `django/middleware/otel_middleware.py`, was Django's
        "opentelemetry/instrumentation/django/middleware/otel_middleware.py",
        "fastapi_app.py",  # the app's own: relative to its directory
        "<frozen runpy>",
    ]
    assert short[2].line == 1 and short[3].line == 3
    assert owner_of(short[:3]) == Owner("opentelemetry", INSTRUMENTATION)


# -- instrumentation as a kind -------------------------------------------------------------------


def test_sentry_inside_fastapi_is_sentrys_and_framework_code_below_it_the_frameworks() -> None:
    fastapi = "FastAPI.__call__ (fastapi/applications.py:1)"
    patched = (
        "patch_asgi_app.<locals>._sentry_patched_asgi_app (sentry_sdk/integrations/starlette.py:1)"
    )
    serializer = "_Serializer._serialize_node_impl (sentry_sdk/serializer.py:1)"
    assert owner_of(stack(fastapi, patched, serializer)) == Owner("sentry", INSTRUMENTATION)
    # json (no layer) called by Sentry is Sentry's time
    assert owner_of(stack(fastapi, patched, "dumps (json/__init__.py:1)")).layer == "sentry"
    # the app Sentry runs is not Sentry's
    starlette = "Starlette.__call__ (starlette/applications.py:1)"
    assert owner_of(stack(fastapi, patched, starlette)) == Owner("starlette", "framework")


def test_instrumentation_inside_a_layer_of_its_own_product_is_the_layers() -> None:
    otel = "OpenTelemetryMiddleware.__call__ (opentelemetry/instrumentation/asgi/__init__.py:1)"
    sdk = "Tracer.start_span (opentelemetry/sdk/trace/__init__.py:1)"
    attrs = "BoundedAttributes.__init__ (opentelemetry/attributes/__init__.py:1)"
    assert owner_of(stack(otel, sdk, attrs), APP_RULES) == Owner(
        "OpenTelemetryMiddleware", "middleware"
    )
    # Without the layer (a target, or the layer not chosen) it is OpenTelemetry's.
    assert owner_of(stack(otel, sdk, attrs)) == Owner("opentelemetry", INSTRUMENTATION)
    # Sentry's span around a CORS layer's call stays Sentry's: the layer is another product's.
    cors = "CORSMiddleware.__call__ (starlette/middleware/cors.py:1)"
    span = "_enable_span_for_middleware.<locals>._create_span_call (sentry_sdk/integrations/starlette.py:1)"  # noqa: E501
    start = "Span.__init__ (sentry_sdk/tracing.py:1)"
    assert owner_of(stack(otel, cors, span, start), APP_RULES) == Owner("sentry", INSTRUMENTATION)
    prometheus = "PrometheusInstrumentatorMiddleware.__call__ (prometheus_fastapi_instrumentator/middleware.py:1)"  # noqa: E501
    labels = "MetricWrapperBase.labels (prometheus_client/metrics.py:1)"
    assert owner_of(stack(prometheus, labels), APP_RULES).layer == (
        "PrometheusInstrumentatorMiddleware"
    )
    assert owner_of(stack(labels)) == Owner("prometheus", INSTRUMENTATION)


def test_the_recorded_app_names_sentry_first_and_no_sentry_frame_is_fastapis(
    recorded: Stacks,
) -> None:
    busy, _ = split_waiting(recorded)
    shares = attribute(busy, LAYERS, APP_RULES)
    first = shares[0]
    assert (first.layer, first.kind) == ("sentry", INSTRUMENTATION)
    assert first.hottest.startswith("_Serializer._serialize_node_impl (sentry_sdk/serializer.py")
    # Every sample whose leaf is Sentry's code is Sentry's, never the framework's it runs in.
    for frames, _count in busy.items():
        if frames[-1].file.startswith("sentry_sdk/"):
            assert owner_of(frames, APP_RULES).layer == "sentry", frames[-1]
    by_layer = {s.layer: s for s in shares}
    # OpenTelemetry's SDK, called by its ASGI middleware, is that layer's: -m measures it whole.
    assert "opentelemetry" not in by_layer
    assert by_layer["OpenTelemetryMiddleware"].kind == "middleware"
    assert by_layer["OpenTelemetryMiddleware"].hottest.split(" (")[1].startswith("opentelemetry/")
    kinds = by_kind(shares)
    assert kinds[INSTRUMENTATION] == pytest.approx(first.pct, abs=0.01)
    assert sum(kinds.values()) == pytest.approx(100, abs=0.1)
    assert f"{INSTRUMENTATION} sentry" in " ".join(format_layers(shares).split())
    # For a target's rules (no app layers), OpenTelemetry is a row of its own.
    default = {s.layer: s.kind for s in attribute(busy)}
    assert default["opentelemetry"] == INSTRUMENTATION


# -- threads that only wait ----------------------------------------------------------------------


def test_a_stack_waits_when_its_leaf_is_a_wait() -> None:
    thread = "Thread.run (threading.py:1)"
    assert waits(stack(thread, "Event.wait (threading.py:1)", "Condition.wait (threading.py:1)"))
    assert waits(stack("BaseEventLoop._run_once (asyncio/base_events.py:1)",
                       "_PollLikeSelector.select (selectors.py:1)"))  # fmt: skip
    # time.sleep has no Python frame: the known sleeper is the leaf
    assert waits(
        stack(thread, "Monitor._ensure_running.<locals>._thread (sentry_sdk/monitor.py:1)")
    )
    # a wait that is not the leaf: the thread works (a lock released, code after it running)
    assert not waits(stack(thread, "Condition.wait (threading.py:1)", "f (threading.py:1)"))
    assert not waits(stack("wait (mylib/threading.py:1)"))  # the module path, not the file name
    assert not waits(())


def test_the_recorded_waiting_threads_are_left_out_and_said(recorded: Stacks) -> None:
    busy, waiting = split_waiting(recorded)
    # In this recording every background thread waits, and the worker's own thread never does:
    # what is left out is exactly the stacks rooted in a thread's bootstrap.
    threads = Counter({s: n for s, n in recorded.items() if s[0].function == "Thread._bootstrap"})
    assert waiting == threads
    assert sum(busy.values()) + sum(waiting.values()) == sum(recorded.values())
    # left out of top -cum too: no thread machinery, the request path on top
    rows = top_cum(busy, 5)
    assert all("threading.py" not in row.frame.file for row in rows)
    line = format_waiting(waiting, sum(recorded.values()))
    assert line is not None
    left = sum(waiting.values())
    assert line.startswith(f"left out of the shares: {left} samples (")
    assert "Condition.wait" in line and "Monitor._ensure_running.<locals>._thread" in line
    assert format_waiting(Counter(), 10) is None


def test_the_flame_graph_colours_instrumentation_and_names_it_in_the_legend(
    recorded: Stacks,
) -> None:
    busy, _ = split_waiting(recorded)
    svg = render_svg(busy, kind_of=kind_of_frame)
    ET.fromstring(svg)
    assert ">instrumentation</text>" in svg
    colour = COLOURS[INSTRUMENTATION]
    serializer = next(
        f for s in busy for f in s if f.function == "_Serializer._serialize_node_impl"
    )
    assert kind_of_frame(serializer) == INSTRUMENTATION
    assert colour != COLOURS["framework"]


# -- for real ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_profile_of_the_instrumented_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("TRACES", "1.0")
    result = CliRunner().invoke(
        main,
        ["profile", "--app", "examples/instrumentation/fastapi_app.py:app", "-m", "all",
         "--duration", "2", "--lead-in", "1", "-d", str(tmp_path), "--top", "10"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "fastapi_app-all.json").read_text())
    kinds = {share["layer"]: share["kind"] for share in data["layers"]}
    assert kinds["sentry"] == INSTRUMENTATION
    # Sentry's threads and OpenTelemetry's batch processor wait in every sample: left out.
    assert data["waiting"]["samples"] > 0
    assert "Condition.wait" in data["waiting"]["leaves"]
    assert "left out of the shares:" in result.output
    assert sum(share["pct"] for share in data["layers"]) == pytest.approx(100, abs=0.5)
    # The worker's own thread only: top -cum starts on the server, not on threading.
    assert all(row["file"] != "threading.py" for row in data["top"])
