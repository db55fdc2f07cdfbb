"""Serving: start a target (or your app) in its own process group, wait until it answers, stop
all of it; the foreground `serve`.

May import machine, targets and middleware; nothing else of the harness.
"""
