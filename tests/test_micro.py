"""harness micro: in-process cost per request, on one WSGI, one ASGI and one aiohttp target."""

from __future__ import annotations

import io
import json
import logging
import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import UsageError
from harness.experiments.micro import (
    EMPTY,
    AiohttpDriver,
    AsgiDriver,
    Driver,
    MicroError,
    Reply,
    check_reply,
    event_loop,
    micro,
    spin_checks,
    time_drivers,
)
from harness.experiments.micro import ROUTES as MICRO_ROUTES
from harness.experiments.micro.callables import build_app, make_driver
from harness.experiments.micro.replay import is_recovery_answer
from middleware import core
from middleware.stack import ORDER
from targets.table import get_target
from tests.conftest import assert_names_every_middleware

# Tiny: a batch of 100 requests of the full stack (dump pretty-prints JSON) is a few ms.
TINY = ["--repeat", "3", "--requests", "100"]


@pytest.mark.parametrize("target", ["raw-wsgi", "starlette", "fastapi", "aiohttp", "django"])
def test_cli_none_and_all(target: str, tmp_path: Path) -> None:
    out = tmp_path / "micro.json"
    result = CliRunner().invoke(
        main, ["micro", "-t", target, "-m", "none,all", *TINY, "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "overhead vs none" in result.output and "empty" in result.output
    data = json.loads(out.read_text())
    assert data["kind"] == "micro" and data["unit"] == "us_per_request"
    assert (data["schema"], data["version"]) == ("mwbench.micro", 3)
    assert data["settings"]["repeat"] == 3 and data["settings"]["requests"] == 100
    assert data["settings"]["log_output"] == "null"
    assert data["environment"]["python"] and data["environment"]["packages"]["mwbench"]
    (one,) = data["targets"]
    assert one["target"] == target and one["reference"] == "none"
    assert one["loop"]["requests"] == 100 and len(one["loop"]["values_us"]) == 3
    none, full = one["sets"]
    assert (none["name"], none["middlewares"], none["overhead_us"]) == ("none", [], None)
    assert (full["name"], full["middlewares"]) == ("all", list(ORDER))
    for s in (none, full):
        assert s["status"] == 200 and s["requests"] == 100 and len(s["values_us"]) == 3
        est = s["us_per_request"]
        assert est["n"] == 3 and est["low"] <= est["high"] and est["median"] > 0
    # The full stack pretty-prints a JSON dump per request: tens of µs, against a few for none.
    assert full["us_per_request"]["median"] > none["us_per_request"]["median"] + 5
    assert full["overhead_us"]["median"] > 5 and len(full["overhead_values_us"]) == 3


def test_none_is_always_measured_first() -> None:
    report = micro(targets=["raw-asgi"], sets=[("request-id",)], repeat=2, requests=20)
    (one,) = report.targets
    assert [s.name for s in one.sets] == ["none", "request-id"]
    assert one.find("request-id") is report.find("raw-asgi", ("request-id",))
    assert one.find("request-id").overhead is not None  # type: ignore[union-attr]
    assert one.loop.label == EMPTY


@pytest.mark.parametrize("target", ["flask", "starlette", "fastapi", "raw-aiohttp", "django-asgi"])
def test_panic_route_with_and_without_recovery(target: str) -> None:
    report = micro(targets=[target], sets=[("recovery",)], repeat=2, requests=5, request="panic")
    assert [s.status for s in report.targets[0].sets] == [500, 500]
    # Both are 500s; what recovery adds is its JSON body, which the check before timing reads.
    spec = get_target(target)
    with event_loop() as loop:
        replies = {}
        for stack in ((), ("recovery",)):
            driver = make_driver(
                spec.interface, build_app(spec, stack, "null"), MICRO_ROUTES["panic"], loop=loop
            )
            try:
                replies[stack] = driver.check()
            finally:
                driver.close()
    assert is_recovery_answer(replies[("recovery",)]), replies[("recovery",)]
    assert not is_recovery_answer(replies[()]), replies[()]


def test_a_recovery_that_does_not_recover_is_never_timed() -> None:
    framework_500 = Reply(500, [("Content-Type", "text/plain")], b"Internal Server Error")
    panic = MICRO_ROUTES["panic"]
    assert check_reply(framework_500, panic, ()) == []
    (problem,) = check_reply(framework_500, panic, ("recovery",))
    assert "recovery is in the stack but the 500 body is b'Internal Server Error'" in problem
    ours = Reply(500, [("Content-Type", "application/json")], core.error_body("id-1"))
    assert check_reply(ours, panic, ("request-id", "recovery")) == []


def test_unknown_middleware_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["micro", "-t", "flask", "-m", "none,bogus"])
    assert result.exit_code == 2
    assert_names_every_middleware(result.output, "bogus")


@pytest.mark.parametrize("name", ["nope", "ceiling"])
def test_unknown_or_unmeasurable_target_is_a_usage_error(name: str) -> None:
    result = CliRunner().invoke(main, ["micro", "-t", name])
    assert result.exit_code == 2
    assert "raw-wsgi" in result.output and "aiohttp" in result.output


def test_bad_log_output_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["micro", "-t", "flask", "--log-output", "nowhere"])
    assert result.exit_code == 2 and "file:PATH" in result.output


def test_log_output_file_gets_the_entries(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "micro.log"
    micro(targets=["raw-wsgi"], sets=[("logger",)], repeat=2, requests=3, log_output=f"file:{log}")
    lines = log.read_text().splitlines()
    assert len(lines) >= 6 and all(" access " in line for line in lines)


def test_wrong_answer_is_never_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(target: Any, stack: tuple[str, ...], log_output: str) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("404 Not Found", [])
            return [b""]

        return app

    monkeypatch.setattr("harness.experiments.micro.run.build_app", build)
    with pytest.raises(MicroError, match="answered 404, not 200"):
        micro(targets=["raw-wsgi"], sets=[()], repeat=2, requests=1)


def test_check_reply_names_missing_headers() -> None:
    request = MICRO_ROUTES["healthz"]
    reply = Reply(200, [("Content-Type", "application/json")], b'{"status":"ok"}')
    assert check_reply(reply, request, ()) == []
    problems = check_reply(reply, request, ("request-id", "secure"))
    assert any("X-Request-ID" in p for p in problems)
    assert any("X-Frame-Options" in p for p in problems)
    # A name the project does not know (a future spin:20us) requires no header.
    assert check_reply(reply, request, ("spin:20us",)) == []


class _Fixed(Driver):
    interface = "wsgi"

    def __init__(self, ns_per_request: int) -> None:
        self.ns = ns_per_request
        self.calls: list[int] = []

    def check(self) -> Reply:
        return Reply(200, [], b"")

    def run(self, n: int) -> int:
        self.calls.append(n)
        return n * self.ns


def test_time_drivers_interleaves_and_pairs() -> None:
    order: list[str] = []

    class Recording(_Fixed):
        def __init__(self, label: str, ns: int) -> None:
            super().__init__(ns)
            self.label = label

        def run(self, n: int) -> int:
            order.append(self.label)
            return super().run(n)

    drivers = {"a": Recording("a", 1000), "b": Recording("b", 3500)}
    series = time_drivers(drivers, repeat=4, requests=50)
    assert series["a"].values_us == [1.0] * 4 and series["b"].values_us == [3.5] * 4
    assert series["a"].requests == 50
    timed = order[2:]  # after one warm-up each
    assert timed == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_auto_requests_fill_the_batch_time() -> None:
    slow, fast = _Fixed(50_000), _Fixed(500)
    series = time_drivers({"slow": slow, "fast": fast}, repeat=2, batch_s=0.01)
    assert series["slow"].requests == 200  # 10 ms / 50 µs
    assert series["fast"].requests == 20_000


def test_asgi_receive_waits_until_the_response_is_complete() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((await receive())["type"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        seen.append((await receive())["type"])

    with event_loop() as loop:
        reply = AsgiDriver(app, MICRO_ROUTES["healthz"], loop=loop).check()
    assert (reply.status, reply.body) == (200, b"ok")
    assert seen == ["http.request", "http.disconnect"]


def test_aiohttp_access_log_runs_when_configured() -> None:
    from targets.aiohttp_app import create_app

    stream = io.StringIO()
    logger = logging.Logger("test.aiohttp.access", logging.INFO)
    logger.addHandler(logging.StreamHandler(stream))
    with event_loop() as loop:
        driver = AiohttpDriver(create_app(), MICRO_ROUTES["healthz"], loop=loop, access_log=logger)
        try:
            reply = driver.check()
            driver.run(2)
        finally:
            driver.close()
    assert reply.status == 200 and reply.body == b'{"status":"ok"}'
    assert reply.header("Content-Type") == "application/json"
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and all('"GET /healthz HTTP/1.1" 200' in line for line in lines)


# ---------------------------------------------------------------------------------------------
# spin sets: the known cost against what micro measures


def test_spin_sets_are_checked_against_their_spin_less_twin(tmp_path: Path) -> None:
    # Timed by the thread's CPU time: a batch that another process or the hypervisor interrupts
    # does not grow, so the window below holds however busy the machine is.
    report = micro(
        targets=["raw-wsgi", "starlette", "aiohttp"],
        sets=[("spin:100us",), ("logger",), ("logger", "spin:100us"), ("request-id",)],
        repeat=3,
        requests=50,
        clock="cpu",
    )
    rows = spin_checks(report)
    assert [r.label for r in rows] == [
        f"{t} {s}"
        for t in ("raw-wsgi", "starlette", "aiohttp")
        for s in ("spin:100us", "logger+spin:100us vs logger")
    ]
    twins = {
        f"{one.target} {s.name}": statistics.median(s.series.values_us)
        for one in report.targets
        for s in one.sets
        if s.stack in ((), ("logger",))
    }
    for row in rows:
        assert row.measure == "in-process" and row.check.known_us == 100
        measured = row.check.measured
        assert measured is not None and measured.n == 3
        # The spin burns exactly 100 µs of this thread's CPU time, plus its own dispatch (up to
        # 30). What else moves the difference is the set's own work, which a VM running at half
        # speed for a round doubles: the margin is the twin's own cost (a few µs on raw-wsgi).
        target, _, twin = row.label.partition(" ")
        own = twins[f"{target} {twin.split(' vs ')[1] if ' vs ' in twin else 'none'}"]
        assert 95 - own <= measured.median <= 130 + own, (row.label, measured, own)
    checks = report.to_dict()["spin_checks"]
    assert [c["set"] for c in checks] == [r.label for r in rows]
    assert {"known_us", "median_us", "low_us", "high_us", "passed"} <= set(checks[0])
    assert "spin_checks" not in micro(targets=["raw-wsgi"], sets=[], repeat=2, requests=5).to_dict()
    assert report.settings["clock"] == "cpu"
    assert report.environment["timer"].startswith("thread_time_ns")


def test_cpu_clock_leaves_out_what_the_thread_did_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # A middleware that sleeps: wall time sees the wait, the thread's CPU time does not.
    import time

    monkeypatch.setattr("middleware.spin.spinner", lambda ns: lambda: time.sleep(ns / 1e9))
    sets = [("spin:500us",)]
    wall = micro(targets=["raw-wsgi"], sets=sets, repeat=3, requests=20, clock="wall")
    cpu = micro(targets=["raw-wsgi"], sets=sets, repeat=3, requests=20, clock="cpu")
    wall_us, cpu_us = (
        r.find("raw-wsgi", ("spin:500us",)).overhead.median  # type: ignore[union-attr]
        for r in (wall, cpu)
    )
    assert wall_us >= 450 and cpu_us < 100, (wall_us, cpu_us)
    with pytest.raises(UsageError, match="unknown clock 'tsc'; valid: wall, cpu, instructions"):
        micro(targets=["raw-wsgi"], sets=sets, repeat=2, requests=1, clock="tsc")


def test_a_spin_that_does_not_spin_fails_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # A spin that burns nothing: what micro measures is far from the known cost, and says so.
    monkeypatch.setattr("middleware.spin.spinner", lambda ns: lambda: None)
    result = CliRunner().invoke(main, ["micro", "-t", "raw-wsgi", "-m", "none,spin:50us", *TINY])
    assert result.exit_code == 1
    assert "spin: known cost against measured overhead" in result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "spin check failed" in error and "raw-wsgi spin:50us (in-process): known 50 µs" in error
