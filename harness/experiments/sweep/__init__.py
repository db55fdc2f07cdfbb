"""`harness run`: the concurrency sweep with wrk (plan, run, progress), its terminal table
(render) and the diff of two sweeps (diff). The rounds of a compare are sweeps.

May import render, load, serving, machine and stats.
"""
