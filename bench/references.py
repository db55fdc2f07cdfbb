"""Part (b): our middlewares against the reference libraries doing the same job, in the same run.

Each comparison times, interleaved (harness.experiments.micro.time_drivers), the bare
app, the app with
our middleware and the app with each reference, and reports what each adds to the bare app (paired
by repeat) and ours minus each reference (paired): "faster", "same within noise" (the interval
includes 0) or "SLOWER". Every log goes to a stream that drops it after formatting (our `null` sink;
a logging.StreamHandler on harness.experiments.micro.NullStream for the references), so
formatting is timed and writing is not, alike for all.

- request-id vs asgi-correlation-id's CorrelationIdMiddleware, with no incoming id and with a valid
  one (a uuid4 hex, which both accept), on Starlette (both added with add_middleware) and on a bare
  ASGI app that builds its messages per request (asgi-correlation-id appends to the start
  message's header list in place; raw-asgi sends one shared dict, which would grow).
- logger vs uvicorn's access log (the very `access_logger.info(...)` call uvicorn's httptools
  protocol makes in `send`, with uvicorn's AccessFormatter), vs a Starlette BaseHTTPMiddleware
  logger (what many users write), and vs aiohttp's AccessLogger (the server's own, default format).
- recovery vs Starlette's ServerErrorMiddleware, on a request that does not raise and on one that
  does. Without ours, the server logs the traceback (uvicorn: "Exception in ASGI application"):
  that is part of the job ours does, so the reference rows include it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.report import fmt_est, part_result, table, verdict
from harness.experiments.micro import (
    ROUTES,
    AiohttpDriver,
    AsgiDriver,
    Driver,
    MicroRequest,
    NullStream,
    build_app,
    event_loop,
    overhead,
    time_drivers,
)
from harness.stats.intervals import estimate
from targets.routes import HEALTHZ_BODY
from targets.table import get_target

OURS = "ours"


def null_logger(name: str, formatter: logging.Formatter | None = None) -> logging.Logger:
    """A logger outside logging's registry, INFO and up, formatting into a NullStream."""
    handler = logging.StreamHandler(NullStream())
    if formatter is not None:
        handler.setFormatter(formatter)
    logger = logging.Logger(name, logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    return logger


def uvicorn_access_hook() -> Callable[[dict[str, Any], Mapping[str, Any]], None]:
    """uvicorn's per-request access-log call (protocols/http/httptools_impl.py, in `send` at
    http.response.start), on a logger configured as uvicorn's LOGGING_CONFIG configures
    `uvicorn.access` (AccessFormatter, no colours)."""
    from uvicorn.logging import AccessFormatter
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

    logger = null_logger(
        "uvicorn.access",
        AccessFormatter(
            fmt='%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            use_colors=False,
        ),
    )

    def hook(scope: dict[str, Any], message: Mapping[str, Any]) -> None:
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(scope),  # type: ignore[arg-type]
            scope["method"],
            get_path_with_query_string(scope),  # type: ignore[arg-type]
            scope["http_version"],
            message["status"],
        )

    return hook


def base_http_logger() -> type:
    """The access logger many Starlette users write: a BaseHTTPMiddleware subclass."""
    from starlette.middleware.base import BaseHTTPMiddleware

    logger = null_logger("bench.basehttp", logging.Formatter("%(asctime)s %(message)s"))

    class AccessLogMiddleware(BaseHTTPMiddleware):
        async def dispatch(self, request: Any, call_next: Any) -> Any:
            started = time.perf_counter()
            response = await call_next(request)
            logger.info(
                '%s - "%s %s" %d %.3f ms',
                request.client.host if request.client else "-",
                request.method,
                request.url.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
            return response

    return AccessLogMiddleware


async def fresh_asgi(scope: Any, receive: Any, send: Any) -> None:
    """raw-asgi's /healthz, with messages built per request (see the module docstring)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")],
        }
    )
    await send({"type": "http.response.body", "body": HEALTHZ_BODY})


@dataclass
class Comparison:
    job: str
    framework: str
    case: str
    bare: str  # what the bare app is
    drivers: dict[str, Driver]  # "bare", OURS, then the references by name
    requires_status: int = 200
    notes: list[str] = field(default_factory=list)


def comparisons(loop: Any) -> list[Comparison]:
    from asgi_correlation_id import CorrelationIdMiddleware
    from starlette.middleware.errors import ServerErrorMiddleware

    from middleware.asgi import RecoveryMiddleware, RequestIdMiddleware
    from targets import raw_asgi
    from targets.starlette_app import build_starlette

    healthz, panic = ROUTES["healthz"], ROUTES["panic"]
    with_id = healthz.with_headers(("X-Request-ID", uuid.uuid4().hex))
    starlette, raw_aiohttp, aiohttp = (
        get_target("starlette"), get_target("raw-aiohttp"), get_target("aiohttp"),
    )  # fmt: skip

    def asgi(app: Any, request: MicroRequest = healthz, **kw: Any) -> AsgiDriver:
        return AsgiDriver(app, request, loop=loop, **kw)

    def starlette_with(cls: Any) -> Any:
        app = build_starlette()
        app.add_middleware(cls)
        return app

    found: list[Comparison] = []
    for case, request in (("no incoming id", healthz), ("valid incoming id", with_id)):
        found.append(
            Comparison("request-id", "starlette", case, "Starlette, none", {
                "bare": asgi(build_app(starlette, (), "null"), request),
                OURS: asgi(build_app(starlette, ("request-id",), "null"), request),
                "asgi-correlation-id": asgi(starlette_with(CorrelationIdMiddleware), request),
            })
        )  # fmt: skip
        found.append(
            Comparison("request-id", "bare ASGI", case, "bare ASGI app (fresh messages)", {
                "bare": asgi(fresh_asgi, request),
                OURS: asgi(RequestIdMiddleware(fresh_asgi), request),
                "asgi-correlation-id": asgi(CorrelationIdMiddleware(fresh_asgi), request),
            })
        )  # fmt: skip
    starlette_none = build_app(starlette, (), "null")
    found.append(
        Comparison("logger", "starlette", "GET /healthz", "Starlette, none", {
            "bare": asgi(starlette_none),
            OURS: asgi(build_app(starlette, ("logger",), "null")),
            "uvicorn access log": asgi(starlette_none, on_start=uvicorn_access_hook()),
            "BaseHTTPMiddleware logger": asgi(starlette_with(base_http_logger())),
        }, notes=["uvicorn's line has no time, latency or request id; ours has all three"])
    )  # fmt: skip
    raw_none = build_app(get_target("raw-asgi"), (), "null")
    found.append(
        Comparison("logger", "raw-asgi", "GET /healthz", "raw-asgi, none", {
            "bare": asgi(raw_none),
            OURS: asgi(build_app(get_target("raw-asgi"), ("logger",), "null")),
            "uvicorn access log": asgi(raw_none, on_start=uvicorn_access_hook()),
        })
    )  # fmt: skip
    for target in (aiohttp, raw_aiohttp):
        none = build_app(target, (), "null")
        found.append(
            Comparison("logger", target.name, "GET /healthz", f"{target.name}, none", {
                "bare": AiohttpDriver(none, healthz, loop=loop),
                OURS: AiohttpDriver(build_app(target, ("logger",), "null"), healthz, loop=loop),
                "aiohttp AccessLogger": AiohttpDriver(
                    none, healthz, loop=loop, access_log=null_logger("aiohttp.access")
                ),
            })
        )  # fmt: skip
    bare: Any = raw_asgi.app  # annotated with a plain dict scope; every wrapper accepts it
    for case, request, status in (("no exception", healthz, 200), ("raises", panic, 500)):
        found.append(
            Comparison("recovery", "raw-asgi", case, "raw-asgi, none (+ uvicorn's error log)", {
                "bare": asgi(bare, request),
                OURS: asgi(RecoveryMiddleware(bare, "null"), request),
                "ServerErrorMiddleware": asgi(ServerErrorMiddleware(bare), request),
            }, requires_status=status)
        )  # fmt: skip
    found.append(
        Comparison(
            "recovery", "starlette", "raises",
            "Starlette, none: its built-in ServerErrorMiddleware + uvicorn's error log", {
                "bare": asgi(build_app(starlette, (), "null"), panic),
                OURS: asgi(build_app(starlette, ("recovery",), "null"), panic),
            }, requires_status=500,
            notes=["Starlette always has ServerErrorMiddleware outermost; ours runs inside it, "
                   "so here ours is measured against Starlette's own path (the bare row)"],
        )
    )  # fmt: skip
    return found


def measure(comparison: Comparison, repeat: int, batch_s: float) -> dict[str, Any]:
    for label, driver in comparison.drivers.items():
        reply = driver.check()
        if reply.status != comparison.requires_status:
            raise RuntimeError(
                f"{comparison.job}/{comparison.framework}/{label} answered {reply.status}"
            )
    series = time_drivers(comparison.drivers, repeat=repeat, batch_s=batch_s)
    bare = series["bare"].values_us
    ours = series[OURS].values_us
    variants = []
    for label, one in series.items():
        added = overhead(one.values_us, bare) if label != "bare" else None
        vs_ours = overhead(ours, one.values_us) if label not in ("bare", OURS) else None
        variants.append(
            {
                "name": label,
                "requests": one.requests,
                "us_per_request": estimate(one.values_us).to_dict(),
                "added_us": added.to_dict() if added else None,
                "ours_minus_this_us": vs_ours.to_dict() if vs_ours else None,
            }
        )
    if len(series) == 2:  # ours against the bare framework's own path
        only = overhead(ours, bare)
        variants[1]["ours_minus_this_us"] = None
        variants[0]["ours_minus_this_us"] = only.to_dict() if only else None
    return {
        "job": comparison.job,
        "framework": comparison.framework,
        "case": comparison.case,
        "bare": comparison.bare,
        "variants": variants,
        "notes": comparison.notes,
    }


def legacy_figures(requests: int, repeats: int) -> list[dict[str, Any]]:
    """bench/request_id_vs_correlation_id.py's own figures (its method: median of `repeats`
    loops of `requests` on raw-asgi, restoring raw-asgi's shared start message after each send)."""
    from asgi_correlation_id import CorrelationIdMiddleware

    from bench import request_id_vs_correlation_id as legacy
    from middleware.asgi import RequestIdMiddleware
    from targets import raw_asgi

    bare: Any = raw_asgi.app
    variants = {
        "raw-asgi (bare)": bare,
        "ours: RequestIdMiddleware": RequestIdMiddleware(bare),
        "asgi-correlation-id": CorrelationIdMiddleware(bare),
    }
    rows = []
    for case, incoming in (
        ("no incoming id", None),
        ("valid incoming id", uuid.uuid4().hex.encode()),
    ):
        base = legacy.measure(bare, requests, repeats, incoming)
        for name, app in variants.items():
            cost = base if app is bare else legacy.measure(app, requests, repeats, incoming)
            rows.append({"variant": name, "case": case, "us": cost, "added_us": cost - base})
    return rows


def run(
    *, repeat: int = 15, batch_s: float = 0.04, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    started = time.monotonic()
    results = []
    with event_loop() as loop:
        found = comparisons(loop)
        try:
            for comparison in found:
                echo(f"references: {comparison.job} on {comparison.framework}, {comparison.case}")
                results.append(measure(comparison, repeat, batch_s))
        finally:
            for comparison in found:
                for driver in comparison.drivers.values():
                    driver.close()
    echo("references: bench/request_id_vs_correlation_id.py")
    legacy = legacy_figures(requests=50_000, repeats=5)
    data = {"repeat": repeat, "batch_s": batch_s, "comparisons": results, "legacy": legacy}
    return part_result(time.monotonic() - started, tables(data), notes(data), data)


def tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for c in data["comparisons"]:
        for v in c["variants"]:
            is_bare = v["name"] == "bare"
            diff = v["ours_minus_this_us"]
            rows.append(
                [
                    c["job"] if is_bare else "",
                    c["framework"] if is_bare else "",
                    c["case"] if is_bare else "",
                    c["bare"] if is_bare else v["name"],
                    fmt_est(v["us_per_request"]),
                    "" if is_bare else fmt_est(v["added_us"], sign=True),
                    fmt_est(diff, sign=True) if diff else "",
                    verdict(diff) if diff else "",
                ]
            )
    main = table(
        "(b) ours vs reference libraries, in-process µs per request (median ±95% half-width)",
        ["job", "framework", "case", "variant", "µs/request", "added", "ours − this", "verdict"],
        rows,
    )
    legacy = table(
        "(b) as bench/request_id_vs_correlation_id.py measures it (raw-asgi; median of 5 runs)",
        ["variant", "case", "µs/request", "added"],
        [
            [r["variant"], r["case"], f"{r['us']:.3f}", f"{r['added_us']:+.3f}"]
            for r in data["legacy"]
        ],
    )
    return [main, legacy]


def notes(data: dict[str, Any]) -> list[str]:
    lines = []
    for c in data["comparisons"]:
        for v in c["variants"]:
            diff = v["ours_minus_this_us"]
            if diff and diff.get("low") is not None and diff["low"] > 0:
                other = c["bare"] if v["name"] == "bare" else v["name"]
                lines.append(
                    f"OURS SLOWER: {c['job']} on {c['framework']} ({c['case']}): ours adds "
                    f"{diff['median']:.3f} µs more than {other} "
                    f"(interval {diff['low']:.3f} … {diff['high']:.3f})"
                )
        lines.extend(f"{c['job']} on {c['framework']}: {n}" for n in c["notes"])
    if not any(line.startswith("OURS SLOWER") for line in lines):
        lines.insert(0, "ours is nowhere significantly slower than a reference")
    return lines
