"""`harness demo`: the source document's story measured on this machine, and its report.

Runs measurements (measure, profiling) and writes with output; imported only by the CLI.
"""
