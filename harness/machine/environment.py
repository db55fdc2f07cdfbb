"""Where numbers were taken, pyperf-style: one record that every result file carries."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.machine.system import default_root
from harness.machine.system import inspect as inspect_system
from targets.server_table import server_packages

# The frameworks the targets run on, and what they are made of.
FRAMEWORKS = (
    "flask",
    "werkzeug",
    "starlette",
    "fastapi",
    "pydantic",
    "aiohttp",
    "multidict",
    "yarl",
    "django",
    "asgiref",
)
# The versions worth knowing beside a number: the harness, its servers (every one in the server
# table, whichever ran), its frameworks.
PACKAGES = tuple(
    dict.fromkeys(
        ("mwbench", "click", "rich", "matplotlib", "psutil", *server_packages(), *FRAMEWORKS)
    )
)


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    found = {}
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment(**extra: Any) -> dict[str, Any]:
    """Python, platform, CPUs, load, versions and the idle-state settings, then `extra`."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": sorted(os.sched_getaffinity(0)),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "packages": versions(),
        # cpuidle / haltpoll / cpufreq: what an idle CPU does changes what a request costs.
        "system": inspect_system(root=default_root()).to_dict(),
        **extra,
    }
