"""What results become: charts, the compare, calibration and micro reports, diffs of two sweeps.

May import measure, profiling, load and machine, for the result types it renders; none of them
imports it: a stage returns its result and the caller writes it.
"""
