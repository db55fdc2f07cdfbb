"""The one rich Console every command prints through."""

from __future__ import annotations

import sys

from rich.console import Console

# Wide when piped (logs, CI): rich would otherwise fold tables to 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
