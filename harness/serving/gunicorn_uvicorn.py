"""The gunicorn worker class of server gunicorn-uvicorn: uvicorn's UvicornWorker, from whichever
module the server's environment has (targets.server_table.MODULE_CHOICES), so that an environment
with an uvicorn older than 0.30 (FastAPI 0.75's era) serves with the worker it ships.

Runs in the server process: it imports the standard library, targets and uvicorn's worker only.
"""

from __future__ import annotations

import importlib
from typing import Any

from targets.server_table import MODULE_CHOICES


def _worker() -> Any:
    modules = MODULE_CHOICES["uvicorn-worker"]
    for module in modules:
        try:
            return importlib.import_module(module).UvicornWorker
        except ImportError:
            continue
    raise ImportError(f"no UvicornWorker here: install uvicorn-worker (tried {', '.join(modules)})")


UvicornWorker = _worker()
