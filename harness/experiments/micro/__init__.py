"""`harness micro`: the in-process cost per request of a middleware set on a framework.

No server and no network: the WSGI callable, the ASGI app or the aiohttp application is called
directly, in a loop, the way its server would call it. A repeat is one timed batch of N requests
(`time.perf_counter_ns` around the whole batch, or the thread's CPU time with `clock="cpu"`); the
sets of a target are interleaved within each repeat (A B C, then B C A, ...), so a set's overhead
over `none` is a paired difference per repeat, with a median and a Student-t 95% interval
(harness.stats.intervals). With N in the thousands, the resolution is far below a microsecond.

What one timed request includes, per interface (the server's own work is excluded: no socket, no
HTTP parsing, no response serialization by the server, no per-request task):

- WSGI (gunicorn's part mimicked): a copy of a prepared environ as gunicorn builds it, the app
  call with a no-op `start_response`, iterating the body, and `close()` (where logger and dump
  write when the body is not a list). An exception is logged as gunicorn's worker logs it.
- ASGI (uvicorn's part mimicked): a fresh scope as uvicorn's httptools protocol builds it, the app
  call with a `receive` that returns the body once and then waits for the response to complete
  (then `http.disconnect`), as uvicorn's does, and a `send` that records only completion. An
  exception is logged (with traceback) as uvicorn logs it, and a 500 sent if nothing was. The
  lifespan protocol is not run (no target has startup work).
- aiohttp: aiohttp's own server code from the parsed request on: a real `RequestHandler` makes
  the `Request` (with a fresh `StreamWriter`) and runs `_handle_request`, i.e. the router and the
  middlewares (`Application._handle`) or the low-level handler, the response's `prepare()` and
  `write_eof()` (which serialize it into a transport that discards the bytes), and the access log
  when one is configured (none by default, as in this project's gunicorn workers).

The loop's own cost is calibrated with the cheapest app of each interface (`empty`): what remains
of `none` above it is the framework's. Log sinks are `null` by default: entries are still
formatted, only not written.

In steps: plan (MicroOptions, checked), run (each target's apps built, checked, timed), result,
and render. May import profile (whose layer rules the allocation table reads), measures and the
layers below; no other experiment.
"""

from harness.experiments.micro.aiohttp_driver import AiohttpDriver
from harness.experiments.micro.asgi_driver import AsgiDriver
from harness.experiments.micro.callables import EMPTY_APPS, build_app, make_driver
from harness.experiments.micro.driver import Driver, MicroError, NullStream, event_loop, loop_name
from harness.experiments.micro.plan import MicroOptions
from harness.experiments.micro.replay import ROUTES, MicroRequest, Reply, check_reply
from harness.experiments.micro.result import (
    EXCLUDED,
    INCLUDED,
    MicroReport,
    SetResult,
    TargetResult,
    spin_checks,
)
from harness.experiments.micro.run import EMPTY, INTERFACES, MICRO_TARGETS, micro, micro_environment
from harness.experiments.micro.timing import (
    CLOCKS,
    DEFAULT_BATCH_S,
    DEFAULT_REPEAT,
    INSTRUCTIONS,
    Series,
    overhead,
    time_drivers,
)
from harness.experiments.micro.wsgi_driver import WsgiDriver

__all__ = [
    "CLOCKS",
    "DEFAULT_BATCH_S",
    "DEFAULT_REPEAT",
    "EMPTY",
    "EMPTY_APPS",
    "EXCLUDED",
    "INCLUDED",
    "INSTRUCTIONS",
    "INTERFACES",
    "MICRO_TARGETS",
    "ROUTES",
    "AiohttpDriver",
    "AsgiDriver",
    "Driver",
    "MicroError",
    "MicroOptions",
    "MicroReport",
    "MicroRequest",
    "NullStream",
    "Reply",
    "Series",
    "SetResult",
    "TargetResult",
    "WsgiDriver",
    "build_app",
    "check_reply",
    "event_loop",
    "loop_name",
    "make_driver",
    "micro",
    "micro_environment",
    "overhead",
    "spin_checks",
    "time_drivers",
]
