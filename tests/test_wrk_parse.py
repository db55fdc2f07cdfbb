"""The wrk output parser and runner, against outputs captured from real wrk runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.load.wrk import WrkError, WrkLoad, resolve_wrk, run_wrk, wrk_command
from harness.load.wrk_output import (
    WrkParseError,
    WrkResult,
    parse_bytes,
    parse_duration,
    parse_metric,
    parse_time_ms,
    parse_wrk_output,
    wrk_seconds,
)

FIXTURES = Path(__file__).parent / "fixtures" / "wrk"
FAKE_WRK = str(FIXTURES / "fake_wrk.py")


def capture(name: str) -> str:
    return (FIXTURES / f"{name}.stdout").read_text()


def test_latency_units() -> None:
    assert parse_time_ms("88.39us") == pytest.approx(0.08839)
    assert parse_time_ms("2.11ms") == pytest.approx(2.11)
    assert parse_time_ms("1.24s") == pytest.approx(1240)
    assert parse_time_ms("1.50m") == pytest.approx(90_000)
    assert parse_time_ms("1.02h") == pytest.approx(3_672_000)


def test_metric_suffixes() -> None:
    assert parse_metric("3335.36") == pytest.approx(3335.36)
    assert parse_metric("178.45k") == pytest.approx(178_450)
    assert parse_metric("1.20M") == pytest.approx(1_200_000)
    with pytest.raises(ValueError):
        parse_metric("fast")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("300s", 300), ("1m", 60), ("500ms", 0.5), ("2", 2), ("1h", 3600)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 parsecs", "-1s", "nan"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_wrk_takes_whole_seconds() -> None:
    assert wrk_seconds(0.5) == 1
    assert wrk_seconds(2.0) == 2
    assert wrk_seconds(2.2) == 3
    load = WrkLoad(connections=8, threads=2, duration=0.5, timeout=30)
    assert wrk_command("http://x/", load) == [
        "wrk", "-t2", "-d1s", "-T30s", "--latency", "-c", "8", "http://x/",
    ]  # fmt: skip


def test_plain_run_without_distribution() -> None:
    r = parse_wrk_output(capture("ceiling_plain"))
    assert r.status == "ok"
    assert (r.threads, r.connections, r.requests) == (1, 16, 194328)
    assert r.qps == pytest.approx(176651.86)
    assert r.duration_s == pytest.approx(1.10)
    assert r.latency_avg_ms == pytest.approx(0.08839)
    assert r.latency_stdev_ms == pytest.approx(0.07268)
    assert r.latency_max_ms == pytest.approx(2.11)
    assert r.p50_ms is None and r.p99_ms is None
    assert r.success_pct == 100.0
    assert r.bytes_read == pytest.approx(20.39 * 2**20)  # `20.39MB read`: wrk's units are binary


@pytest.mark.parametrize(
    ("text", "count"),
    [("0.00B", 0.0), ("573.12KB", 573.12 * 1024), ("1.28MB", 1.28 * 2**20), ("2.5GB", 2.5 * 2**30)],
)
def test_byte_counts(text: str, count: float) -> None:
    assert parse_bytes(text) == pytest.approx(count)
    with pytest.raises(WrkParseError):
        parse_bytes(text.replace("B", "b"))


def test_latency_distribution() -> None:
    r = parse_wrk_output(capture("ceiling_latency"))
    assert (r.p50_ms, r.p75_ms, r.p90_ms, r.p99_ms) == pytest.approx((0.353, 0.389, 0.493, 0.760))
    assert r.url.endswith("/healthz")


def test_percentiles_in_seconds() -> None:
    r = parse_wrk_output(capture("flask_seconds"))
    assert r.latency_max_ms == pytest.approx(1240)
    assert (r.p75_ms, r.p90_ms, r.p99_ms) == pytest.approx((1070, 1160, 1230))
    assert r.duration_s == pytest.approx(4.08)


def test_every_unit_hand_edited() -> None:
    r = parse_wrk_output(capture("edited_units"))
    assert r.latency_avg_ms == pytest.approx(90_000)
    assert r.latency_stdev_ms == pytest.approx(30_000)
    assert r.latency_max_ms == pytest.approx(1.02 * 3_600_000)
    assert r.p90_ms == pytest.approx(120_000)
    assert r.p99_ms == pytest.approx(1.10 * 3_600_000)
    assert r.duration_s == pytest.approx(300)
    assert r.qps == pytest.approx(1500)
    # 6 threads, 200 connections: wrk opens 200 // 6 per thread.
    assert (r.threads, r.connections) == (6, 198)
    assert (r.errors_connect, r.errors_read, r.errors_write, r.errors_timeout) == (3, 4, 5, 6)
    assert r.non2xx3xx == 394
    assert (r.ok, r.attempted) == (8000, 8394 + 18)
    assert r.success_pct == pytest.approx(100 * 8000 / 8412)


def test_non_2xx_counted_as_failures() -> None:
    r = parse_wrk_output(capture("ceiling_non2xx"))
    assert r.non2xx3xx == r.requests == 158899
    assert r.success_pct == 0.0
    assert r.status == "failed"
    assert "no 2xx/3xx" in r.reason


def test_timeouts_lower_the_success_rate() -> None:
    r = parse_wrk_output(capture("flask_timeouts"))
    assert r.status == "ok"
    assert r.errors_timeout == 7008
    assert r.success_pct == pytest.approx(100 * 10360 / (10360 + 7008))


def test_server_killed_mid_run() -> None:
    r = parse_wrk_output(capture("ceiling_killed"))
    assert (r.errors_read, r.errors_write) == (64, 226098)
    assert r.success_pct == pytest.approx(100 * 120269 / (120269 + 64 + 226098))


def test_zero_requests_is_failed_never_nan() -> None:
    r = parse_wrk_output(capture("no_answer"))
    assert r.requests == 0
    assert r.status == "failed"
    assert "0 requests" in r.reason
    assert r.success_pct == 0.0
    assert r.latency_avg_ms is None and r.p99_ms is None
    data = r.to_dict()
    json.dumps(data, allow_nan=False)
    assert not any(isinstance(v, float) and math.isnan(v) for v in data.values())


@pytest.mark.parametrize("name", ["refused", "bad_url", "threads_gt_conns"])
def test_no_summary_is_failed(name: str) -> None:
    assert parse_wrk_output(capture(name)).status == "failed"


def test_round_trip() -> None:
    r = parse_wrk_output(capture("flask_timeouts"), command=["wrk"], concurrency=6000)
    back = WrkResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert r.to_dict()["success_pct"] == round(r.success_pct, 4)


def _fake(monkeypatch: pytest.MonkeyPatch, plan: str) -> None:
    monkeypatch.setenv("FAKE_WRK_PLAN", plan)


def test_run_clamps_threads_and_records_connections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake(monkeypatch, "*=flask_latency")
    monkeypatch.setenv("FAKE_WRK_LOG", str(tmp_path / "log"))
    r = run_wrk(
        "http://127.0.0.1:1/",
        WrkLoad(connections=2, threads=8, duration=1, timeout=1),
        wrk=FAKE_WRK,
    )
    assert "-t2" in (tmp_path / "log").read_text().split()
    assert (r.threads, r.connections, r.concurrency) == (2, 2, 2)
    r = run_wrk(
        "http://127.0.0.1:1/",
        WrkLoad(connections=200, threads=3, duration=1, timeout=1),
        wrk=FAKE_WRK,
    )
    assert r.connections == 198


@pytest.mark.parametrize(
    ("capture_name", "reason"),
    [
        ("refused", "unable to connect to 127.0.0.1:54533 Connection refused"),
        ("bad_url", "invalid URL: not a url"),
        ("threads_gt_conns", "number of connections must be >= threads"),
    ],
)
def test_wrk_errors_become_failed_results(
    monkeypatch: pytest.MonkeyPatch, capture_name: str, reason: str
) -> None:
    _fake(monkeypatch, f"*={capture_name}")
    r = run_wrk(
        "http://127.0.0.1:1/",
        WrkLoad(connections=4, threads=1, duration=1, timeout=1),
        wrk=FAKE_WRK,
    )
    assert r.status == "failed"
    assert reason in r.reason
    assert r.requests == 0 and r.success_pct == 0.0


def test_missing_wrk_stops_everything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(WrkError, match="not found"):
        run_wrk(
            "http://127.0.0.1:1/",
            WrkLoad(connections=1, threads=1, duration=1, timeout=1),
            wrk=str(tmp_path / "nope"),
        )
    monkeypatch.setenv("HARNESS_WRK", str(tmp_path / "nope"))
    with pytest.raises(WrkError, match="HARNESS_WRK"):
        resolve_wrk()
    monkeypatch.setenv("HARNESS_WRK", FAKE_WRK)
    assert resolve_wrk() == FAKE_WRK
    assert resolve_wrk("/bin/true") == "/bin/true"  # --wrk wins over the environment
