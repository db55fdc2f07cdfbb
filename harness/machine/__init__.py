"""The machine under the pipeline: CPU sets for pinning, idle-state inspection and tuning.

Imports nothing else of the harness.
"""
