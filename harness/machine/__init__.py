"""The machine under the pipeline: CPU sets for pinning, idle states (inspect and tune), and the
record of where numbers were taken.

May import nothing else of the harness.
"""
