"""Reference `/healthz` servers: one small module per framework, and the table that lists them."""

from targets.table import TARGETS, Target, UnknownTarget, get_target

__all__ = ["TARGETS", "Target", "UnknownTarget", "get_target"]
