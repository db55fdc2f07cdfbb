"""`harness demo`: the source document's story measured on this machine, and its report.

May import output, measure, profiling, load, serving and machine; only the CLI imports it.
"""
