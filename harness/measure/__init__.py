"""Costs per request with intervals: compare (over the wire), micro (in-process), calibrate.

Starts servers (serving) and drives them (load); returns result types, never writes reports.
"""
