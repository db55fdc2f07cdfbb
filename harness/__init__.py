"""mwbench's harness: serve a target, load it with wrk, measure what each layer costs, write it.

The packages are the pipeline's stages, each importing only those below it (pyproject.toml's
import-linter contracts): cli, tour, output, measure | profiling, load, serving, machine.

The Python API, for scripts that run their own benchmarks (docs/api.md):

    import harness

    report = harness.compare(targets=["starlette"], sets=[(), ("dump",)], repeat=3)
    harness.write_report(report)          # compare.json, compare.md, overhead.png
    for entry in report.sets:
        print(entry.label, entry.overhead_cpu)

Names load on first use: a server process imports harness.serving's app loader, and must not
pull in the rest of the harness (nor this project's `middleware` package) before the user's app.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "start_server": "harness.serving.servers",
    "running": "harness.serving.servers",
    "RunningServer": "harness.serving.servers",
    "ServerError": "harness.serving.servers",
    "sweep": "harness.load.sweep",
    "SweepResult": "harness.load.results",
    "compare": "harness.measure.compare",
    "CompareReport": "harness.measure.contenders",
    "write_report": "harness.output.compare_report",
    "micro": "harness.measure.micro",
    "MicroReport": "harness.measure.micro",
    "Estimate": "harness.measure.stats",
}

if TYPE_CHECKING:
    from harness.load.results import SweepResult
    from harness.load.sweep import sweep
    from harness.measure.compare import compare
    from harness.measure.contenders import CompareReport
    from harness.measure.micro import MicroReport, micro
    from harness.measure.stats import Estimate
    from harness.output.compare_report import write_report
    from harness.serving.servers import RunningServer, ServerError, running, start_server


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


__all__ = [
    "CompareReport",
    "Estimate",
    "MicroReport",
    "RunningServer",
    "ServerError",
    "SweepResult",
    "compare",
    "micro",
    "running",
    "start_server",
    "sweep",
    "write_report",
]
