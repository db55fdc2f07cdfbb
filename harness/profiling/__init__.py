"""`harness profile`: py-spy on a server under wrk load, `top -cum`, layers, flame graph.

May import load, serving and machine; independent of measure.
"""
