"""Load: wrk (find, run, parse), the concurrency sweep and its files (.dat, .json), fd limits,
and the check of a server's answers before it is timed.

May import serving and machine, never a stage above.
"""
