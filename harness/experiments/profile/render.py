"""What profile writes beside py-spy's collapsed stacks: the flame graph and NAME.json."""

from __future__ import annotations

from pathlib import Path

from harness.experiments.profile.attribution import DEFAULT_RULES
from harness.experiments.profile.collapsed import Frame, total_samples
from harness.experiments.profile.flamegraph import render_svg
from harness.experiments.profile.run import ProfileResult
from harness.load.files import write_atomic, write_json
from middleware.stack import stack_name


def kind_of_frame(frame: Frame) -> str | None:
    """The kind a frame's colour says (instrumentation, framework, ...); None: no layer."""
    found = DEFAULT_RULES.claim(frame)
    return found.owner.kind if found is not None else None


def write_profile(result: ProfileResult) -> list[Path]:
    """NAME.svg (the flame graph, frames coloured by kind) and NAME.json (everything)."""
    waiting = total_samples(result.waiting)
    title = (
        f"{result.target} with {stack_name(result.stack)}: {result.samples} samples, "
        f"{result.wrk.qps:,.0f} req/s under py-spy"
        + (f" ({waiting} of threads that only wait left out)" if waiting else "")
    )
    svg = render_svg(result.stacks, title=title, kind_of=kind_of_frame)
    write_atomic(result.files["flamegraph"], svg)
    write_json(result.files["json"], result.to_dict())
    return [result.files["flamegraph"], result.files["json"]]
