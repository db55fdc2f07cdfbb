"""The machine under the pipeline: CPU sets for pinning, idle states (inspect and tune), the
record of where numbers were taken, children that die with the harness (lifetime), its
scratch directory (scratch), and the two-namespace lab that puts a network between client and
server (lab).

May import nothing else of the harness.
"""
