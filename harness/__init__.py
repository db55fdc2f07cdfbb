"""mwbench's harness: serve targets, sweep them with wrk, compare middleware stacks, profile."""

__version__ = "0.1.0"
