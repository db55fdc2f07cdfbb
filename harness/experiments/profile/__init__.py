"""`harness profile`: py-spy on a server under wrk load (run, pyspy), `top -cum` (top), the layers
(attribution, reading, waiting), the flame graph (collapsed, flamegraph) and its files (render).

May import sweep, render, load, serving, machine and stats; no measure.
"""
