"""mwbench's harness: serve a target, load it with wrk, measure what each layer costs, write it.

The packages are layers, each importing only those below it (pyproject.toml's import-linter
contracts): cli, experiments (one package per experiment), render | measures, load, serving,
machine, stats. docs/architecture.md walks through them.

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
    "sweep": "harness.experiments.sweep.run",
    "SweepResult": "harness.load.results",
    "compare": "harness.experiments.compare.run",
    "CompareRequest": "harness.experiments.compare.plan",
    "CompareReport": "harness.experiments.compare.result",
    "diff_compares": "harness.experiments.compare.diff",
    "Regression": "harness.experiments.compare.diff",
    "CompareDiff": "harness.experiments.compare.diff",
    "write_report": "harness.experiments.compare.render",
    "calibrate": "harness.experiments.calibrate.run",
    "CalibrationReport": "harness.experiments.calibrate.run",
    "profile": "harness.experiments.profile.run",
    "ProfileResult": "harness.experiments.profile.run",
    "write_profile": "harness.experiments.profile.render",
    "micro": "harness.experiments.micro",
    "MicroReport": "harness.experiments.micro",
    "Estimate": "harness.stats.intervals",
}

if TYPE_CHECKING:
    from harness.errors import HarnessError, RunError, UsageError
    from harness.experiments.calibrate.run import CalibrationReport, calibrate
    from harness.experiments.compare.diff import CompareDiff, Regression, diff_compares
    from harness.experiments.compare.plan import CompareRequest
    from harness.experiments.compare.render import write_report
    from harness.experiments.compare.result import CompareReport
    from harness.experiments.compare.run import compare
    from harness.experiments.micro import MicroReport, micro
    from harness.experiments.profile.render import write_profile
    from harness.experiments.profile.run import ProfileResult, profile
    from harness.experiments.sweep.run import sweep
    from harness.load.results import SweepResult
    from harness.load.settings import LoadSettings
    from harness.machine.cpus import plan as plan_cpus
    from harness.serving.servers import RunningServer, ServerError, running, start_server
    from harness.serving.settings import ServeSettings
    from harness.stats.intervals import Estimate


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    module, _, attr = _API[name].partition(":")
    return getattr(importlib.import_module(module), attr or name)


__all__ = [
    "CalibrationReport",
    "CompareDiff",
    "CompareReport",
    "CompareRequest",
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
