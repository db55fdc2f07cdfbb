"""Memory in-process: what a set allocates per request, and what it keeps.

Every allocation of a window of requests is recorded with memray (Bloomberg's allocation
tracker, `trace_python_allocators`: each PyObject_Malloc, not only pymalloc's arenas, and native
mallocs too), with its Python stack. tracemalloc would not do: it sees only what is still alive
when asked, and the bulk of what a request allocates is freed before it ends (dump's JSON
strings). Two windows, a short and a long one, each after a collection: the difference between
them per request cancels what a window costs besides its requests (the collection itself, the
tracker's start). Per request:

- blocks and bytes allocated (freed or not);
- bytes retained: still held at the end of the window, after a garbage collection, per 1,000
  requests; a set that keeps what it should not shows a steady slope here;
- the stacks of the bytes allocated, for each layer's share (attributed in harness.output,
  as a profile's samples are).
"""

from __future__ import annotations

import ast
import functools
import gc
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.experiments.micro.driver import Driver

WINDOWS = (100, 500)  # requests: the short and the long window
# A set that keeps this much per request, window after window, is leaking: the smallest object
# a request could leave behind (a dict entry, a short string) is about this size.
LEAK_BYTES_PER_REQUEST = 16.0
TOP_STACKS = 200  # the distinct stacks kept, by bytes: enough for every layer's share

Frame = tuple[str, str, int]  # (qualified function, file, line), root first in a stack


@dataclass
class Allocations:
    blocks: float  # allocated per request
    bytes: float  # allocated per request
    retained: float  # bytes still held per 1,000 requests
    requests: int  # between the two windows
    stacks: list[tuple[tuple[Frame, ...], int]] = field(default_factory=list)  # bytes by stack

    @property
    def leaking(self) -> bool:
        return self.retained >= LEAK_BYTES_PER_REQUEST * 1000

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocks_per_request": round(self.blocks, 2),
            "bytes_per_request": round(self.bytes, 1),
            "retained_per_1000_requests": round(self.retained, 1),
            "leaking": self.leaking,
            "requests": self.requests,
            "stacks": [[[list(f) for f in stack], size] for stack, size in self.stacks],
        }


@dataclass
class _Window:
    blocks: int
    bytes: int
    retained: int
    stacks: Counter[tuple[Frame, ...]]


def count_allocations(driver: Driver) -> Allocations:
    """`driver`'s allocations per request: the difference of a short and a long window."""
    with tempfile.TemporaryDirectory(prefix="mwbench-memray-") as tmp:
        # A first window is thrown away: what the first tracking of the process allocates once.
        _window(driver, WINDOWS[0] // 4, Path(tmp) / "first.bin")
        short, long = (_window(driver, n, Path(tmp) / f"w{n}.bin") for n in WINDOWS)
    n = WINDOWS[1] - WINDOWS[0]
    return Allocations(
        blocks=(long.blocks - short.blocks) / n,
        bytes=(long.bytes - short.bytes) / n,
        retained=1000 * (long.retained - short.retained) / n,
        requests=n,
        stacks=long.stacks.most_common(TOP_STACKS),
    )


def _window(driver: Driver, n: int, path: Path) -> _Window:
    import memray
    from memray._memray import AllocatorType

    allocating = {
        AllocatorType.PYMALLOC_MALLOC,
        AllocatorType.PYMALLOC_CALLOC,
        AllocatorType.PYMALLOC_REALLOC,
        AllocatorType.MALLOC,
        AllocatorType.CALLOC,
        AllocatorType.REALLOC,
        AllocatorType.POSIX_MEMALIGN,
        AllocatorType.ALIGNED_ALLOC,
        AllocatorType.MEMALIGN,
    }
    gc.collect()
    with memray.Tracker(
        path, trace_python_allocators=True, file_format=memray.FileFormat.ALL_ALLOCATIONS
    ):
        driver.run(n)
        gc.collect()  # what a cycle still held is not retained
    reader = memray.FileReader(path)
    blocks = size = 0
    by_id: Counter[tuple[int, int]] = Counter()  # bytes by (thread, stack id): read once each
    traces: dict[tuple[int, int], Any] = {}
    for record in reader.get_allocation_records():
        if record.allocator not in allocating:
            continue
        blocks += record.n_allocations
        size += record.size
        key = (record.tid, record.stack_id)
        if key not in traces:
            traces[key] = record
        by_id[key] += record.size
    stacks: Counter[tuple[Frame, ...]] = Counter()
    for key, held in by_id.items():
        stacks[_stack(traces[key].stack_trace())] += held
    retained = sum(r.size for r in reader.get_leaked_allocation_records(merge_threads=True))
    return _Window(blocks, size, retained, stacks)


def _stack(trace: list[tuple[str, str, int]]) -> tuple[Frame, ...]:
    """memray's stack (innermost first, bare function names) root first, each function by its
    qualified name, which says the class a middleware's `__call__` belongs to."""
    return tuple(
        (qualname(file, line, function), file, line) for function, file, line in trace[::-1]
    )


@functools.cache
def _functions(file: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function defined in `file`."""
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                found.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def qualname(file: str, line: int, function: str) -> str:
    """`function`'s qualified name, from the innermost definition of that name around `line`."""
    spans = [
        (first, last, name)
        for first, last, name in _functions(file)
        if first <= line <= last and name.rsplit(".", 1)[-1] == function
    ]
    return max(spans, key=lambda span: span[0])[2] if spans else function
