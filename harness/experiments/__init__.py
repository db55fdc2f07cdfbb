"""The experiments, one package each: what it plans, how it runs, what it finds and what it writes.

- sweep: `harness run`, wrk over concurrency levels (wrktest.sh done right), and the diff of two
- compare: `harness compare`, costs per request with intervals, rounds interleaved, `diff`, `merge`
- profile: `harness profile`, py-spy under load, `top -cum`, layers, flame graph
- micro: `harness micro`, the in-process cost, no server (shares by profile's layers)
- calibrate: `harness calibrate`, known costs through compare, found or not
- open_run: `harness run URL --rate`, the open model and capacity within an SLO
- demo: `harness demo`, the source document's story, built on compare, profile and sweep

May import measures, render, load, serving, machine and stats. An experiment imports another only
where it is built on it (the contract in pyproject.toml says which); only the CLI imports them.
"""
