"""A small, self-contained flame graph SVG from collapsed stacks (root at the bottom, as in
Brendan Gregg's flamegraph.pl): one py-spy recording in raw format then gives both the tables and
the picture. Frames are coloured by the layer they belong to, so a middleware's plateau stands
out from the framework and the server; hovering a frame shows its samples and share.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

from harness.experiments.profile.collapsed import Frame, Stacks, total_samples

WIDTH = 1200
ROW = 16
PAD_TOP = 40
PAD_BOTTOM = 30
SIDE = 10
FONT = 11
CHAR_W = 6.6  # average width of an 11px sans-serif character, to decide what fits
MIN_W = 0.3  # narrower frames are dropped: invisible, and they would bloat the file

# kind -> (fill for frames of that kind); frames of no layer (stdlib, ...) are neutral.
COLOURS = {
    "middleware": "#e8743b",
    "instrumentation": "#d0457e",
    "framework": "#4c8fd6",
    "app": "#a066c9",
    "server": "#5cae5c",
    None: "#d8c872",
}


def _shade(colour: str, label: str) -> str:
    """`colour` lightened by a fixed amount per label, so neighbours of one kind stay apart."""
    mix = (zlib.crc32(label.encode()) % 6) * 0.05
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * mix):02x}" for c in rgb)


@dataclass
class _Node:
    count: int = 0
    children: dict[Frame, _Node] = field(default_factory=dict)


def _tree(stacks: Stacks) -> _Node:
    root = _Node()
    for stack, count in stacks.items():
        root.count += count
        node = root
        for frame in stack:
            node = node.children.setdefault(frame, _Node())
            node.count += count
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0)


def render_svg(
    stacks: Stacks,
    *,
    title: str = "Flame graph",
    kind_of: Callable[[Frame], str | None] = lambda frame: None,
) -> str:
    """The flame graph of `stacks` as an SVG document; `kind_of` picks each frame's colour."""
    root = _tree(stacks)
    total = total_samples(stacks) or 1
    depth = _depth(root)  # includes the root row, `all`
    height = PAD_TOP + depth * ROW + PAD_BOTTOM
    scale = (WIDTH - 2 * SIDE) / total
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="Verdana, sans-serif" font-size="{FONT}">',
        f'<rect width="{WIDTH}" height="{height}" fill="#fbfbf7"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="16">{escape(title)}</text>',
    ]
    legend_x = SIDE
    for kind in COLOURS:
        label = kind or "no layer (stdlib, ...)"
        y = height - 12
        parts.append(
            f'<rect x="{legend_x}" y="{y - 9}" width="10" height="10" fill="{COLOURS[kind]}"/>'
            f'<text x="{legend_x + 14}" y="{y}">{escape(label)}</text>'
        )
        legend_x += 14 + int(len(label) * CHAR_W) + 16

    def frame_svg(label: str, x: float, level: int, count: int, fill: str) -> None:
        w = count * scale
        y = PAD_TOP + (depth - 1 - level) * ROW
        tip = f"{label} ({count} samples, {100 * count / total:.2f}%)"
        parts.append(
            f"<g><title>{escape(tip)}</title>"
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{ROW - 1}" fill="{fill}" rx="2"/>'
        )
        chars = int((w - 6) / CHAR_W)
        if chars >= 3:
            text = label if len(label) <= chars else label[: chars - 2] + ".."
            parts.append(f'<text x="{x + 3:.2f}" y="{y + ROW - 4}">{escape(text)}</text>')
        parts.append("</g>")

    def walk(node: _Node, x: float, level: int) -> None:
        # Children sorted by name, as flamegraph.pl does: x position carries no time order.
        for frame, child in sorted(node.children.items(), key=lambda item: item[0].label):
            w = child.count * scale
            if w >= MIN_W:
                fill = _shade(COLOURS.get(kind_of(frame), "#cccccc"), frame.label)
                frame_svg(frame.label, x, level, child.count, fill)
                walk(child, x, level + 1)
            x += w

    frame_svg("all", SIDE, 0, root.count, "#c8c8c8")
    walk(root, SIDE, 1)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
