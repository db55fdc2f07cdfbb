"""Serving: start a target (or your app) in its own process group, wait until it answers, stop
all of it; the foreground `serve`.

May import machine, and targets and middleware for the built-in apps; nothing else of the harness.
"""
