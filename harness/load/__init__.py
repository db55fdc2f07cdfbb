"""Load: wrk and k6 (find, run, parse), the request to send and the check of a server's answers
before it is timed, the settings of a load, a sweep's result and its files (.dat, .json), fd
limits.

May import serving, machine and stats, never a layer above.
"""
