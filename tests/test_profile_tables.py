"""The profile's readings of collapsed stacks: parsing, pprof's top -cum, layers, flame graph.

Synthetic stacks pin the exact numbers; the recorded ones (tests/fixtures/profile, real py-spy
recordings of flask and starlette with every middleware) check the rules on real frame names.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from harness.experiments.profile.attribution import (
    SHARED_MIDDLEWARE,
    Owner,
    Rules,
    attribute,
    by_kind,
    format_layers,
    module_path,
    owner_of,
)
from harness.experiments.profile.collapsed import (
    CollapsedError,
    Frame,
    Stacks,
    format_collapsed,
    parse_collapsed,
    read_collapsed,
)
from harness.experiments.profile.flamegraph import render_svg
from harness.experiments.profile.pyspy import (
    PtracePermissionError,
    PySpyError,
    failure,
    record_command,
)
from harness.experiments.profile.top import flat_and_cum, format_top, top_cum
from middleware.stack import ORDER

FIXTURES = Path(__file__).parent / "fixtures" / "profile"


def stacks_of(*lines: str) -> Stacks:
    return parse_collapsed(lines)


def layer(stack_text: str) -> str:
    (stack,) = stacks_of(f"{stack_text} 1")
    return owner_of(stack).layer


@pytest.fixture(scope="module")
def flask_all() -> Stacks:
    return read_collapsed(FIXTURES / "flask-all.collapsed.txt")


@pytest.fixture(scope="module")
def starlette_all() -> Stacks:
    return read_collapsed(FIXTURES / "starlette-all.collapsed.txt")


# -- collapsed stacks ------------------------------------------------------------------------------


def test_frames_parse_as_py_spy_prints_them() -> None:
    assert Frame.parse("Flask.wsgi_app (flask/app.py:1479)") == Frame(
        "Flask.wsgi_app", "flask/app.py", 1479
    )
    assert Frame.parse("_run_code (<frozen runpy>:65)") == Frame("_run_code", "<frozen runpy>", 65)
    assert Frame.parse("f.<locals>.<lambda> (a b/c.py:3)").file == "a b/c.py"
    assert Frame.parse("handler (app.py)") == Frame("handler", "app.py", 0)  # --nolineno
    assert Frame.parse("0x7f00 [native]") == Frame("0x7f00 [native]", "", 0)
    for text in ("Flask.wsgi_app (flask/app.py:1479)", "handler (app.py)"):
        assert Frame.parse(text).label == text


def test_collapsed_lines_add_up_and_round_trip() -> None:
    stacks = stacks_of("a (m.py:1);b (m.py:5) 3", "", "a (m.py:1);b (m.py:5) 2", " 4")
    a, b = Frame("a", "m.py", 1), Frame("b", "m.py", 5)
    assert stacks == Counter({(a, b): 5, (): 4})  # ` 4`: samples with no Python frame
    assert parse_collapsed(format_collapsed(stacks).splitlines()) == stacks
    with pytest.raises(CollapsedError, match="line 1"):
        stacks_of("a (m.py:1);b (m.py:5)")


def test_recorded_fixtures_round_trip(flask_all: Stacks, starlette_all: Stacks) -> None:
    for stacks in (flask_all, starlette_all):
        assert parse_collapsed(format_collapsed(stacks).splitlines()) == stacks


# -- top -cum --------------------------------------------------------------------------------------


def test_top_cum_numbers_as_pprof_computes_them() -> None:
    stacks = stacks_of(
        "main (m.py:1);handle (m.py:10);dump (d.py:1);encode (j.py:1) 6",
        "main (m.py:1);handle (m.py:10);send (s.py:1) 3",
        "main (m.py:1) 1",
    )
    rows = {row.frame.function: row for row in top_cum(stacks, None)}
    assert [r.frame.function for r in top_cum(stacks, None)] == [
        "main",
        "handle",
        "encode",
        "dump",
        "send",
    ]  # fmt: skip  (a tie in cum goes to the larger flat, as in pprof)
    assert (rows["main"].flat, rows["main"].cum) == (1, 10)
    assert (rows["dump"].flat, rows["dump"].cum, rows["dump"].cum_pct) == (0, 6, 60.0)
    assert (rows["encode"].flat, rows["encode"].flat_pct) == (6, 60.0)
    # sum% runs down the printed rows: main 10, handle 10, encode 70, dump 70, send 100
    assert [round(r.sum_pct) for r in top_cum(stacks, None)] == [10, 10, 70, 70, 100]
    assert len(top_cum(stacks, 2)) == 2


def test_recursion_counts_once_per_sample() -> None:
    stacks = stacks_of("main (m.py:1);enc (j.py:1);enc (j.py:1);enc (j.py:1) 4", "main (m.py:1) 1")
    (enc,) = [r for r in top_cum(stacks) if r.frame.function == "enc"]
    assert (enc.cum, enc.flat, enc.cum_pct) == (4, 4, 80.0)


def test_top_cum_on_a_real_recording(flask_all: Stacks) -> None:
    total = sum(flask_all.values())
    rows = top_cum(flask_all, 30)
    assert len(rows) == 30
    assert rows[0].cum == total  # the worker's outermost frame is on every sample
    assert all(a.cum >= b.cum for a, b in itertools.pairwise(rows))
    flat, cum = flat_and_cum(flask_all)
    assert sum(flat.values()) == total - flask_all[()]
    # json's encoder recurses into nested dicts: its cum is still at most the samples it is in
    iterencode = [f for f in cum if f.function.endswith("_iterencode_dict")]
    assert iterencode
    for frame in iterencode:
        recursive = [s for s in flask_all if s.count(frame) > 1]
        assert recursive  # the fixture keeps a recursive stack
        assert cum[frame] == sum(c for s, c in flask_all.items() if frame in s)
    text = format_top(rows, total)
    assert text.splitlines()[1].split() == ["flat", "flat%", "sum%", "cum", "cum%", "function"]
    assert "100.00%  <module> (gunicorn/__main__.py:1)" in text


# -- attribution -----------------------------------------------------------------------------------

GUNICORN = "handle (gunicorn/workers/sync.py:1)"
WSGI = "middleware/wsgi.py"


def test_stdlib_time_goes_to_the_layer_that_called_it() -> None:
    assert layer(f"{GUNICORN};DumpMiddleware.__call__ ({WSGI}:1);dumps (json/__init__.py:1)") == (
        "dump"
    )
    assert layer(f"{GUNICORN};write (socket.py:1)") == "gunicorn"
    assert layer("_run_code (<frozen runpy>:1);sleep (time.py:1)") == "other"
    assert owner_of(()) == Owner("other", "other")


def test_the_innermost_layer_owns_the_sample() -> None:
    inside = f"{GUNICORN};RequestIdMiddleware.__call__ ({WSGI}:1);Flask.wsgi_app (flask/app.py:1)"
    assert layer(inside) == "flask"
    assert layer(f"{inside};healthz (targets/flask_app.py:1)") == "app"
    assert layer(f"{inside};healthz (targets/flask_app.py:1);loads (json/__init__.py:1)") == "app"


def test_helpers_yield_to_the_adapter_that_called_them() -> None:
    logger = f"{GUNICORN};LoggerMiddleware.__call__.<locals>.log ({WSGI}:90)"
    # current_request_id names request-id, but here it is the logger's work
    assert layer(f"{logger};current_request_id (middleware/core.py:176)") == "logger"
    assert layer(f"{logger};_fd_writer.<locals>.write (middleware/core.py:46)") == "logger"
    # a helper reached from the server with no adapter in between keeps its own name, if any
    assert layer(f"{GUNICORN};dump_entry (middleware/core.py:401)") == "dump"
    assert layer(f"{GUNICORN};_captured ({WSGI}:276)") == SHARED_MIDDLEWARE


def test_an_adapter_shared_by_several_middlewares_keeps_its_samples() -> None:
    # aiohttp's secure and nocache are one closure: py-spy cannot tell them apart, and the
    # recovery middleware around them must not get their time.
    aio = "middleware/aiohttp.py"
    recovery = f"recovery.<locals>.recovery_middleware ({aio}:86)"
    shared = f"_headers_middleware.<locals>.headers_middleware ({aio}:111)"
    assert layer(f"{recovery};{shared}") == SHARED_MIDDLEWARE
    assert layer(f"{recovery};{shared};update (multidict/_multidict.py:1)") == SHARED_MIDDLEWARE
    assert layer(f"{recovery};{shared};secure.<locals>.headers ({aio}:122)") == "secure"


def test_middleware_names_in_classes_closures_and_modules() -> None:
    rules = Rules()
    cases = {
        "RequestIdMiddleware.__call__.<locals>.send_with_id (middleware/asgi.py:57)": "request-id",
        "NoCacheMiddleware.__call__ (middleware/asgi.py:194)": "nocache",
        "CORSMiddleware.__call__ (middleware/asgi.py:213)": "cors",
        "DumpMiddleware.__call__.<locals>.<lambda> (middleware/wsgi.py:273)": "dump",
        "dump.<locals>.dump_middleware (middleware/aiohttp.py:159)": "dump",
        "recovery_handler.<locals>.recover (middleware/flask.py:24)": "recovery",
        "format_line (middleware/logger.py:3)": "logger",  # a module per middleware
        "log_request_id (middleware/core.py:1)": "request-id",  # the longest spelling wins
        "secure_headers (middleware/core.py:1)": "secure",
    }
    for text, expected in cases.items():
        claim = rules.claim(Frame.parse(text))
        assert claim is not None and claim.owner == Owner(expected, "middleware"), text
    # starlette's own middleware package is the framework, not ours
    claim = rules.claim(
        Frame.parse("ServerErrorMiddleware.__call__ (starlette/middleware/errors.py:1)")
    )
    assert claim is not None and claim.owner == Owner("starlette", "framework")
    # FastAPI's own frames are FastAPI's layer; the Starlette code under it stays Starlette's
    claim = rules.claim(Frame.parse("FastAPI.__call__ (fastapi/applications.py:1)"))
    assert claim is not None and claim.owner == Owner("fastapi", "framework")
    assert rules.claim(Frame.parse("dumps (json/__init__.py:1)")) is None


def test_packages_servers_and_full_filenames() -> None:
    assert layer("Application._handle (aiohttp/web_app.py:1)") == "aiohttp-app"
    assert layer("RequestHandler.start (aiohttp/web_protocol.py:1)") == "aiohttp-server"
    assert layer("run_asgi (uvicorn/protocols/http/httptools_impl.py:1)") == "uvicorn"
    assert layer("Runner.run (asyncio/runners.py:1)") == "event-loop"
    site = "/work/main/.venv/lib/python3.12/site-packages/werkzeug/routing/map.py"
    assert module_path(site) == "werkzeug/routing/map.py"
    assert module_path("/usr/lib/python3.12/json/encoder.py") == "json/encoder.py"
    assert layer(f"Map.bind ({site}:1)") == "flask"
    project = Path(__file__).resolve().parents[1]
    assert layer(f"DumpMiddleware.__call__ ({project}/middleware/wsgi.py:1)") == "dump"


def test_the_tables_are_data() -> None:
    rules = Rules(packages={"django/": ("django", "framework")}, aliases={"dump": ("pretty",)})
    (stack,) = stacks_of("View.dispatch (django/views.py:1);pretty_json (middleware/x.py:1) 1")
    assert owner_of(stack, rules) == Owner("dump", "middleware")
    (stack,) = stacks_of("View.dispatch (django/views.py:1) 1")
    assert owner_of(stack, rules) == Owner("django", "framework")


def test_layers_of_flask_with_every_middleware(flask_all: Stacks) -> None:
    shares = attribute(flask_all, ORDER)
    names = [s.layer for s in shares]
    assert set(ORDER) <= set(names)  # every middleware of the stack is listed, 0 or not
    assert sum(s.samples for s in shares) == sum(flask_all.values())
    assert abs(sum(s.pct for s in shares) - 100) < 1e-6
    middlewares = [s for s in shares if s.kind == "middleware"]
    assert middlewares[0].layer == "dump"  # the costliest middleware
    assert "json/encoder.py" in middlewares[0].hottest
    assert names.index("dump") < 3
    kinds = by_kind(shares)
    assert kinds["server"] > 50  # gunicorn's sync worker: a TCP handshake per request
    assert "by kind:" in format_layers(shares)


def test_layers_of_starlette_with_every_middleware(starlette_all: Stacks) -> None:
    shares = attribute(starlette_all, ORDER)
    assert shares[0].layer == "dump"  # the largest layer of all, above uvicorn
    assert {s.layer for s in shares[:5]} >= {"dump", "uvicorn", "starlette", "logger"}
    assert by_kind(shares)["middleware"] > 30


# -- flame graph -----------------------------------------------------------------------------------


def test_flame_graph_is_valid_svg_with_nested_widths(starlette_all: Stacks) -> None:
    svg = render_svg(starlette_all, title="a <b> & c", kind_of=lambda f: "server")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    groups = root.findall(f"{ns}g")
    titles = [g.find(f"{ns}title").text or "" for g in groups]  # type: ignore[union-attr]
    assert titles[0].startswith(f"all ({sum(starlette_all.values())} samples, 100.00%)")
    assert any(t.startswith("<module> (gunicorn/__main__.py:1)") for t in titles)  # escaped
    rects = [g.find(f"{ns}rect") for g in groups]
    widths = [float(r.get("width", 0)) for r in rects if r is not None]
    assert max(widths) == widths[0]  # nothing is wider than `all`
    assert "a &lt;b&gt; &amp; c" in svg


def test_flame_graph_children_fit_in_their_parent() -> None:
    stacks = stacks_of("a (m.py:1);b (m.py:2) 3", "a (m.py:1);c (m.py:3) 1", "d (m.py:4) 4")
    root = ET.fromstring(render_svg(stacks))
    ns = "{http://www.w3.org/2000/svg}"
    boxes = {}
    for g in root.findall(f"{ns}g"):
        rect = g.find(f"{ns}rect")
        assert rect is not None
        name = (g.findtext(f"{ns}title") or "").split(" (")[0]
        boxes[name] = (
            float(rect.get("x", 0)),
            float(rect.get("width", 0)),
            float(rect.get("y", 0)),
        )
    ax, aw, ay = boxes["a"]
    for child in ("b", "c"):
        x, w, y = boxes[child]
        assert ax <= x and x + w <= ax + aw + 1e-6 and y < ay  # above its parent, within it
    assert boxes["a"][1] == pytest.approx(boxes["d"][1])  # 4 samples each
    assert boxes["b"][1] == pytest.approx(3 * boxes["c"][1])


# -- py-spy's errors -------------------------------------------------------------------------------

PY_SPY_PERMISSION = (
    "Permission Denied: Try running again with elevated permissions by going "
    "'sudo env \"PATH=$PATH\" !!'\n"
)  # py-spy 0.4.3, recorded by running it as `nobody` against a root process


@pytest.mark.parametrize(
    "stderr",
    [
        PY_SPY_PERMISSION,
        "Permission Denied\n\nIt looks like you are running in a docker container. Please make "
        "sure you started your container with the SYS_PTRACE capability.\n",
        "Error: Operation not permitted (os error 1)\n",
    ],
)
def test_permission_errors_say_how_to_fix_them(stderr: str) -> None:
    error = failure(1234, stderr, 1)
    assert isinstance(error, PtracePermissionError)
    message = str(error)
    assert "\n" not in message
    assert "pid 1234" in message and "ptrace" in message
    for fix in ("root", "kernel.yama.ptrace_scope=0", "--cap-add SYS_PTRACE"):
        assert fix in message


def test_other_py_spy_errors_keep_their_first_line() -> None:
    error = failure(7, "Error: Failed to get process executable name.\n\nCaused by: ...\n", 1)
    assert type(error) is PySpyError
    assert str(error) == "py-spy failed on pid 7: Error: Failed to get process executable name."


def test_record_command_aggregates_by_function_and_passes_the_sampling_flags() -> None:
    command = record_command("py-spy", 42, Path("out.txt"), duration=2.2, rate=250)
    assert command[:2] == ["py-spy", "record"]
    for flag in (["--pid", "42"], ["--format", "raw"], ["--duration", "3"], ["--rate", "250"]):
        i = command.index(flag[0])
        assert command[i : i + 2] == flag
    assert "--function" in command  # one row per function, as pprof aggregates
    assert "--nonblocking" not in command and "--gil" not in command
    command = record_command(
        "py-spy", 42, Path("o"), duration=1, rate=1, nonblocking=True, gil=True
    )
    assert "--nonblocking" in command and "--gil" in command
