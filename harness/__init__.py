"""mwbench's harness: serve a target, load it with wrk, measure what each layer costs, write it.

The packages are the pipeline's stages, each importing only those below it (pyproject.toml's
import-linter contracts): cli, tour, output, measure | profiling, load, serving, machine.

The Python API, for scripts that run their own benchmarks (docs/api.md):

    import harness

    report = harness.compare(targets=["starlette"], sets=[(), ("dump",)], repeat=3)
    harness.write_report(report)          # compare.json, compare.md, overhead.png
    for entry in report.sets:
        print(entry.label, entry.overhead("cpu"))

Names load on first use: a server process imports harness.serving's app loader, and must not
pull in the rest of the harness (nor this project's `middleware` package) before the user's app.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "HarnessError": "harness.errors",
    "UsageError": "harness.errors",
    "RunError": "harness.errors",
    "ServeSettings": "harness.serving.settings",
    "LoadSettings": "harness.load.settings",
    "plan_cpus": "harness.machine.cpus:plan",
    "start_server": "harness.serving.servers",
    "running": "harness.serving.servers",
    "RunningServer": "harness.serving.servers",
    "ServerError": "harness.serving.servers",
    "sweep": "harness.load.sweep",
    "SweepResult": "harness.load.results",
    "compare": "harness.measure.compare",
    "CompareReport": "harness.measure.report",
    "diff_compares": "harness.measure.compare_diff",
    "Regression": "harness.measure.compare_diff",
    "CompareDiff": "harness.measure.compare_diff",
    "write_report": "harness.output.compare_report",
    "calibrate": "harness.measure.calibrate",
    "CalibrationReport": "harness.measure.calibrate",
    "profile": "harness.profiling.profile",
    "ProfileResult": "harness.profiling.profile",
    "write_profile": "harness.output.profile_report",
    "micro": "harness.measure.micro",
    "MicroReport": "harness.measure.micro",
    "Estimate": "harness.measure.stats",
}

if TYPE_CHECKING:
    from harness.errors import HarnessError, RunError, UsageError
    from harness.load.results import SweepResult
    from harness.load.settings import LoadSettings
    from harness.load.sweep import sweep
    from harness.machine.cpus import plan as plan_cpus
    from harness.measure.calibrate import CalibrationReport, calibrate
    from harness.measure.compare import compare
    from harness.measure.compare_diff import CompareDiff, Regression, diff_compares
    from harness.measure.micro import MicroReport, micro
    from harness.measure.report import CompareReport
    from harness.measure.stats import Estimate
    from harness.output.compare_report import write_report
    from harness.output.profile_report import write_profile
    from harness.profiling.profile import ProfileResult, profile
    from harness.serving.servers import RunningServer, ServerError, running, start_server
    from harness.serving.settings import ServeSettings


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    module, _, attr = _API[name].partition(":")
    return getattr(importlib.import_module(module), attr or name)


__all__ = [
    "CalibrationReport",
    "CompareDiff",
    "CompareReport",
    "Estimate",
    "HarnessError",
    "LoadSettings",
    "MicroReport",
    "ProfileResult",
    "Regression",
    "RunError",
    "RunningServer",
    "ServeSettings",
    "ServerError",
    "SweepResult",
    "UsageError",
    "calibrate",
    "compare",
    "diff_compares",
    "micro",
    "plan_cpus",
    "profile",
    "running",
    "start_server",
    "sweep",
    "write_profile",
    "write_report",
]
