"""`harness compare`: the cost of a framework and of each middleware set per request, with 95%
intervals, against a raw baseline on the same server, in interleaved rounds.

plan (checked and resolved, nothing started) -> run (the rounds: rounds picks who, round measures
one) -> result (CompareReport: the rounds as measured, estimates computed from them) -> render
(the table, compare.md, compare.json, charts; render_* for each measure and axis). Beside them:
contenders (who is measured against whom), axes and environments (--python, --variant), gate,
capacity (within an SLO), diff (two compares), merge (shards).

May import sweep, measures, render, load, serving, machine and stats.
"""
