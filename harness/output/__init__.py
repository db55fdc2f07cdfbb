"""What results become: charts, the compare and calibration reports, diffs of two sweeps.

Reads the result types of measure, profiling and load; never imported by them.
"""
