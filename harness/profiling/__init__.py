"""`harness profile`: py-spy on a server under wrk load, `top -cum`, layers, flame graph.

Uses serving and load; independent of measure.
"""
