"""How the harness tells a server process which middleware stack and log sink to build.

gunicorn imports the app in the worker process, so the choice travels in the environment.
"""

from __future__ import annotations

import os

from middleware.stack import parse_stack

ENV_MIDDLEWARES = "MWBENCH_MIDDLEWARES"
ENV_LOG_OUTPUT = "MWBENCH_LOG_OUTPUT"


def environment(stack: tuple[str, ...], log_output: str) -> dict[str, str]:
    return {ENV_MIDDLEWARES: ",".join(stack) or "none", ENV_LOG_OUTPUT: log_output}


def stack_from_env() -> tuple[str, ...]:
    return parse_stack(os.environ.get(ENV_MIDDLEWARES, "none"))


def log_output_from_env() -> str:
    return os.environ.get(ENV_LOG_OUTPUT, "stdout")
