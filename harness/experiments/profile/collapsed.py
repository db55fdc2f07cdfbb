"""Collapsed stacks, the format `py-spy record --format raw` writes (Brendan Gregg's folded
format): one line per distinct stack, root first, frames joined by `;`, then a space and the
number of samples. A py-spy frame reads `function (file:line)`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from harness.errors import RunError

_FRAME_RE = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


class Frame(NamedTuple):
    function: str  # py-spy's qualified name: `Class.method`, `f.<locals>.g`, `<module>`
    file: str  # as py-spy prints it: shortened to the package part (`flask/app.py`)
    line: int  # 0 when the recording has no line numbers (`--nolineno`)

    @property
    def label(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.function} ({where})" if where else self.function

    @classmethod
    def parse(cls, text: str) -> Frame:
        match = _FRAME_RE.match(text)
        if match is None:
            # Not a Python frame (a native one, or a thread/process pseudo-frame): keep it whole.
            return cls(text, "", 0)
        return cls(match["function"], match["file"], int(match["line"] or 0))


Stack = tuple[Frame, ...]  # root first, leaf last; () for a sample with no Python frame
Stacks = Counter[Stack]


class CollapsedError(RunError):
    """A line that is not `frames count`."""


def parse_collapsed(lines: Iterable[str]) -> Stacks:
    stacks: Stacks = Counter()
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        text, _, count = line.rpartition(" ")
        try:
            samples = int(count)
        except ValueError:
            raise CollapsedError(f"line {number}: no sample count at the end: {line!r}") from None
        # py-spy writes ` 5` for samples it took while no Python frame was on the stack.
        stack = tuple(Frame.parse(f) for f in text.split(";")) if text.strip() else ()
        stacks[stack] += samples
    return stacks


def read_collapsed(path: Path) -> Stacks:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return parse_collapsed(handle)


def format_collapsed(stacks: Stacks) -> str:
    """The inverse of parse_collapsed, most samples first (so a trimmed file keeps the bulk)."""
    lines = [
        f"{';'.join(frame.label for frame in stack)} {count}"
        for stack, count in sorted(stacks.items(), key=lambda item: (-item[1], item[0]))
    ]
    return "".join(line + "\n" for line in lines)


def total_samples(stacks: Stacks) -> int:
    return sum(stacks.values())
