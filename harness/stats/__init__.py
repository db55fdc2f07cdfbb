"""Statistics at the bottom: medians and Student-t intervals of a few rounds, paired differences
and Welch's test (intervals), every request's latency as a log-bucket histogram (histogram), and
percentiles pooled over rounds with a bootstrap interval (pooled).

May import nothing else of the harness: numbers in, numbers out.
"""
