"""Your own app (`--app`): the sample apps in tests/apps, written as their users write them, loaded,
their layers found and toggled, served on real servers and driven through the CLI."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from harness.cli.main import main
from harness.experiments.micro import event_loop, make_driver
from harness.experiments.micro.callables import build_app
from harness.experiments.micro.replay import MicroRequest
from harness.serving.apps import AppInfo, describe_app, target_for
from harness.serving.servers import running
from harness.serving.settings import ServeSettings
from harness.serving.userapp import entry as loader
from harness.serving.userapp.spec import AppLoadError, AppSpec
from tests.conftest import request

ROOT = Path(__file__).resolve().parents[1]
APPS = "tests/apps"
FASTAPI = f"{APPS}/shop_fastapi.py:app"
FLASK = f"{APPS}/shop_flask.py:app"
AIOHTTP = f"{APPS}/shop_aiohttp.py:app"
ITEM = "/items/7"
SHORT = ["--duration", "1s", "--warmup", "0", "-c", "16", "--no-ceiling", "--no-charts"]


def describe(spec: str, factory: bool = False) -> AppInfo:
    return describe_app(AppSpec(spec, factory, str(ROOT)))


# ---------------------------------------------------------------------------------------------
# what is found in each app


@pytest.mark.parametrize(
    ("spec", "interface", "layers"),
    [
        (FASTAPI, "asgi", ("GZipMiddleware", "PoweredBy", "ServerTiming")),
        (FLASK, "wsgi", ("ProxyFix", "start_timer", "add_timing", "powered_by")),
        (AIOHTTP, "aiohttp", ("timing", "powered_by")),
        ("tests.apps.shop_aiohttp:create_app", "aiohttp", ("timing", "powered_by")),
    ],
)
def test_the_apps_own_layers_are_found_in_order(
    spec: str, interface: str, layers: tuple[str, ...]
) -> None:
    info = describe(spec, factory=spec.endswith("create_app"))
    assert info.interface == interface
    assert info.layer_names == layers
    target = target_for(info)
    assert target.is_user_app and target.layers == layers
    assert (
        target.baseline
        == {"asgi": "raw-asgi", "wsgi": "raw-wsgi", "aiohttp": "raw-aiohttp"}[interface]
    )


def _answer(spec: str, stack: tuple[str, ...]) -> dict[str, str]:
    """The headers the app answers GET /items/7 with, called in-process with `stack`."""
    target = target_for(describe(spec))
    app = build_app(target, stack, "null")
    with event_loop() as loop:
        driver = make_driver(target.interface, app, MicroRequest(path=ITEM), loop=loop)
        try:
            reply = driver.check()
        finally:
            driver.close()
    assert reply.status == 200, reply
    return {k.lower(): v for k, v in reply.headers}


@pytest.mark.parametrize(
    ("spec", "stack", "present", "absent"),
    [
        (FASTAPI, ("PoweredBy",), ["x-powered-by"], ["server-timing"]),
        (FASTAPI, ("ServerTiming",), ["server-timing"], ["x-powered-by"]),
        (FASTAPI, (), [], ["server-timing", "x-powered-by"]),
        (FLASK, ("start_timer", "add_timing"), ["server-timing"], ["x-powered-by"]),
        (FLASK, ("powered_by",), ["x-powered-by"], ["server-timing"]),
        (AIOHTTP, ("powered_by",), ["x-powered-by"], ["server-timing"]),
        (AIOHTTP, ("timing", "powered_by"), ["x-powered-by", "server-timing"], []),
    ],
)
def test_a_set_keeps_exactly_its_layers(
    spec: str, stack: tuple[str, ...], present: list[str], absent: list[str]
) -> None:
    headers = _answer(spec, stack)
    assert all(name in headers for name in present), headers
    assert not any(name in headers for name in absent), headers


def _invoke(args: list[str], code: int = 0) -> Result:
    """`harness ARGS`, which must exit with `code`."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    return result


def test_extras_go_innermost_and_a_wrong_interface_is_refused() -> None:
    gzip = "starlette.middleware.gzip:GZipMiddleware"
    headers = _answer(FASTAPI, ("PoweredBy", "spin:5us", gzip))
    assert headers["x-powered-by"] == "shop"
    with pytest.raises(AppLoadError, match=r"GZipMiddleware is ASGI; this app is WSGI"):
        describe_app(AppSpec(FLASK, app_dir=str(ROOT)), (gzip,))


# ---------------------------------------------------------------------------------------------
# bad input: one line, non-zero, before any load


# An --app that cannot be served as given, or a -m naming a middleware that cannot be added, is a
# usage error (exit 2), said before any server starts, as an unknown name is.
@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["--app", f"{APPS}/does_not_import.py:app"], 2,
         "No module named 'definitely_not_installed_package'"),
        (["--app", f"{APPS}/shop_fastapi.py:nope"], 2, "has no attribute 'nope'; apps there: app"),
        (["--app", f"{APPS}/broken.py:not_an_app"], 2, "is a dict, not an app"),
        (["--app", f"{APPS}/broken.py:factory_that_raises", "--factory"], 2,
         "raised RuntimeError: no database configured"),
        (["--app", f"{APPS}/missing.py:app"], 2, "no such file"),
        (["--app", FASTAPI, "-m", "none,Gzip"], 2,
         "unknown middleware 'Gzip'; valid: none, all, GZipMiddleware, PoweredBy, ServerTiming"),
        (["--app", FASTAPI, "-t", "flask"], 2, "give -t/--target or --app (not both)"),
        (["-t", "flask", "-m", "none,starlette.middleware.gzip:GZipMiddleware"], 2,
         "extra middleware GZipMiddleware is ASGI; this app is WSGI"),
        (["-t", "starlette", "-m", "none,no_such_pkg.mw:Timing"], 2,
         "no module named 'no_such_pkg'"),
        (["--app", FASTAPI, "--method", "BREW"], 2, "'BREW' is not one of"),
        (["--app", FASTAPI, "-H", "no colon"], 2, "a header is 'Name: value'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_before_any_server(
    args: list[str], code: int, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = _invoke(["compare", *args, "-d", str(tmp_path), *SHORT], code)
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.json"))  # nothing was measured


# ---------------------------------------------------------------------------------------------
# real servers


def test_each_layer_on_a_real_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    target = target_for(describe(FLASK))
    with running(
        target, ServeSettings(worker_class="gthread"), stack=("powered_by",), ready_path=ITEM
    ) as s:
        answer = request(s.url, path=ITEM)
        assert answer.status == 200 and answer.headers["X-Powered-By"] == "shop"
        assert "Server-Timing" not in answer.headers
        assert json.loads(answer.body)["id"] == 7


def test_compare_an_apps_layers_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = _invoke(
        ["compare", "--app", FASTAPI, "--path", ITEM, "-m", "each", "-r", "2",
         "-d", str(tmp_path), *SHORT],
    )  # fmt: skip
    data = json.loads((tmp_path / "compare.json").read_text())
    assert [s["name"] for s in data["sets"]] == [
        "none", "GZipMiddleware", "PoweredBy", "ServerTiming", "all",
    ]  # fmt: skip
    assert data["baseline"] == "raw-asgi"
    assert data["settings"]["request"]["path"] == ITEM
    by_name = {s["name"]: s for s in data["sets"]}
    # BaseHTTPMiddleware (PoweredBy) costs clearly more than a pure ASGI one (ServerTiming).
    assert by_name["PoweredBy"]["overhead_us_per_request"] > (
        by_name["ServerTiming"]["overhead_us_per_request"] + 10
    )
    assert "raw-asgi:none" in result.output and "PoweredBy" in result.output


def test_a_route_that_fails_is_never_timed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for path, status in (("/nope", "404"), ("/broken", "500")):
        _invoke(
            ["compare", "--app", FASTAPI, "--path", path, "-m", "none", "--no-baseline",
             "-r", "1", "-d", str(tmp_path / status), *SHORT],
            code=1,
        )  # fmt: skip
        markdown = (tmp_path / status / "compare.md").read_text()
        assert f"GET {path} answered {status}, not 2xx" in markdown
        assert not list((tmp_path / status).glob("*_none.dat"))


def test_an_import_path_middleware_on_a_target(tmp_path: Path) -> None:
    _invoke(
        ["compare", "-t", "starlette", "-m", "none,starlette.middleware.gzip:GZipMiddleware",
         "--no-baseline", "-r", "1", "-d", str(tmp_path), *SHORT],
    )  # fmt: skip
    data = json.loads((tmp_path / "compare.json").read_text())
    assert [s["name"] for s in data["sets"]] == ["none", "GZipMiddleware"]
    assert data["sets"][1]["middlewares"] == ["starlette.middleware.gzip:GZipMiddleware"]


def test_a_post_with_headers_and_a_body_is_what_wrk_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    _invoke(
        ["compare", "--app", FASTAPI, "--path", "/items", "--method", "POST",
         "-H", "Content-Type: application/json", "--body", '{"name": "x"}', "-m", "none",
         "--no-baseline", "-r", "1", "-d", str(tmp_path), *SHORT],
    )  # fmt: skip
    script = (tmp_path / "shop_fastapi_none.lua").read_text()
    assert 'wrk.method = "POST"' in script and "Content-Type" in script
    swept = json.loads((tmp_path / "shop_fastapi_none.json").read_text())
    level = swept["levels"][0]
    assert "-s" in level["command"] and level["non2xx3xx"] == 0 and level["requests"] > 0


def test_micro_and_layers_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    listed = CliRunner().invoke(main, ["layers", "--app", FLASK])
    assert listed.exit_code == 0, listed.output
    for name in ("ProxyFix", "start_timer", "add_timing", "powered_by", "raw-wsgi"):
        assert name in listed.output
    micro = CliRunner().invoke(
        main, ["micro", "--app", AIOHTTP, "--path", ITEM, "-m", "none,powered_by", "-r", "3"]
    )
    assert micro.exit_code == 0, micro.output
    assert "powered_by" in micro.output and "shop_aiohttp" in micro.output


def test_asyncio_is_left_as_found() -> None:
    # The loader runs an app's async factory with asyncio.run; nothing of it stays behind. It
    # runs here, in this process (describe_app runs it in a child interpreter), and in a thread
    # of its own: a thread starts with no event loop, so one left set would show.
    seen: list[object] = []

    def load() -> None:
        info = loader.describe(AppSpec("tests.apps.shop_aiohttp:create_app", True, str(ROOT)))
        seen.append(info["interface"])
        try:
            seen.append(asyncio.get_event_loop_policy().get_event_loop())
        except RuntimeError as exc:  # no current event loop in this thread
            seen.append(exc)

    thread = threading.Thread(target=load)
    thread.start()
    thread.join()
    interface, loop = seen
    assert interface == "aiohttp"
    assert isinstance(loop, RuntimeError), f"the loader left {loop!r} set as the current loop"


@pytest.mark.slow
def test_profile_attributes_the_apps_own_layers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    _invoke(
        ["profile", "--app", FASTAPI, "--path", ITEM, "-m", "all", "--duration", "2",
         "-d", str(tmp_path)],
    )  # fmt: skip
    data = json.loads((tmp_path / "shop_fastapi-all.json").read_text())
    kinds = {share["layer"]: share["kind"] for share in data["layers"]}
    for layer in ("GZipMiddleware", "PoweredBy", "ServerTiming"):
        assert kinds.get(layer) == "middleware", data["layers"]
    powered = next(s for s in data["layers"] if s["layer"] == "PoweredBy")
    assert powered["samples"] > 0  # BaseHTTPMiddleware's dispatch is where its time shows
    assert data["settings"]["request"]["path"] == ITEM
