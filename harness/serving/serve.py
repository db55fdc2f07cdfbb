"""`harness serve`: one target in the foreground until Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable

from harness.serving.servers import start_server
from harness.serving.settings import ServeSettings
from middleware.stack import stack_name
from targets.routes import HEALTHZ_PATH
from targets.table import Target, get_target

# In the foreground the middlewares log to the terminal, unless told otherwise.
FOREGROUND = ServeSettings(log_output="stdout", port=8000)


def serve(
    *,
    target: str | Target,
    stack: tuple[str, ...] = (),
    settings: ServeSettings = FOREGROUND,
    path: str = HEALTHZ_PATH,
    echo: Callable[[str], None] = print,
) -> int:
    """Run until interrupted or until the server exits; returns the exit code to use. `path`:
    what to print as the address (and, for a user's app, what must answer before it is up)."""
    spec = get_target(target) if isinstance(target, str) else target
    running = start_server(spec, settings, stack=stack, ready_path=path, capture_output=False)
    workers = settings.workers
    try:
        serving = running.config.serving
        if serving.note:
            echo(serving.note)
        echo(
            f"{spec.name} ({spec.framework}) with middlewares {stack_name(stack, spec.layers)} "
            f"on {serving.name}, {workers} worker(s): {running.url}{path}"
        )
        echo("press Ctrl-C to stop")
        code = running.process.wait()
        echo(f"{spec.name} exited with code {code}")
        return code or 1
    except KeyboardInterrupt:
        # Whenever it comes once the server is up, even while the lines above are printed.
        return 0
    finally:
        running.stop()
