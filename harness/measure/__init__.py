"""Costs per request with intervals: compare (over the wire), micro (in-process), calibrate.

May import load, serving and machine; returns result types and never writes reports.
"""
