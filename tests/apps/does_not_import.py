"""An app module whose import fails, as when a dependency is missing."""

import definitely_not_installed_package  # noqa: F401

app = None
