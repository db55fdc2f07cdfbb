"""Writing a result file whole or not at all, with the permissions of any file the user writes;
the one convention of every JSON file (`{"schema": "mwbench.X", "version": N}`) and its reader."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def _umask() -> int:
    # Read, not set: os.umask() can only be read by changing it, which races other threads.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Replace `path` with `data` in one step, so a reader (or a Ctrl-C) never sees half a file;
    on any failure the old file stays and no temporary is left. The file gets 0666 less the
    umask, as open() would give it (mkstemp alone makes it 0600)."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.fchmod(out.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


LEGACY_SWEEP_SCHEMA = 1  # a sweep's NAME.json before the convention: {"schema": 1, ...}


# Every JSON file mwbench writes opens with what it is and the version of its shape:
# {"schema": "mwbench.compare", "version": 2, ...}. A reader asks for the schema and the
# versions it can read, and says in one line what else it found.
def versioned(schema: str, version: int, body: dict[str, Any]) -> dict[str, Any]:
    """`body` under the convention's two keys (`schema` without its `mwbench.` prefix)."""
    return {"schema": f"mwbench.{schema}", "version": version, **body}


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """A versioned JSON file, whole or not at all."""
    return write_atomic(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path, *, error: type[HarnessError]) -> Any:
    """The JSON in `path`; `error` in one line naming the file when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not JSON: not UTF-8 text") from None


def schema_of(data: Any) -> str | None:
    """What a file is, by its `schema` (None when it does not say). A sweep's NAME.json before
    the convention had `"schema": 1`: it is a sweep."""
    if not isinstance(data, dict):
        return None
    schema = data.get("schema")
    if schema == LEGACY_SWEEP_SCHEMA:
        return "mwbench.sweep"
    return schema if isinstance(schema, str) else None


def check_versioned(
    data: Any,
    *,
    schema: str,
    versions: Collection[int],
    path: Path,
    error: type[HarnessError],
    what: str = "",
) -> dict[str, Any]:
    """`data` when it is a `mwbench.<schema>` file (`what`, as the user knows it) of a version
    this harness reads."""
    name, what = f"mwbench.{schema}", what or f"{schema} file"
    if schema_of(data) != name:
        raise error(f"{path}: not a {what} (no schema {name!r})")
    version = data.get("version", 1 if data.get("schema") == LEGACY_SWEEP_SCHEMA else None)
    if version not in versions:
        readable = ", ".join(map(str, sorted(versions)))
        raise error(
            f"{path}: {what} version {version}; this harness reads version {readable}: "
            "measure it again"
        )
    return dict(data)


def read_versioned(
    path: Path,
    *,
    schema: str,
    versions: Collection[int],
    error: type[HarnessError],
    what: str = "",
) -> dict[str, Any]:
    """A versioned file read back as plain data, checked to be what the caller can read."""
    data = read_json(path, error=error)
    return check_versioned(
        data, schema=schema, versions=versions, path=path, error=error, what=what
    )
