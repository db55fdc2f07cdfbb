"""The measures: one module per way of reading what a set costs per request (cpu, qps,
instructions, latency, memory), its tool beside it (server_cpu, callgrind, slo), the `Measure`
seam and its `Figure`s (measure), the registry by name (registry), and the costs calibrate knows
in advance with their check (known, known_check).

May import load, serving, machine and stats; no experiment, and nothing that draws.
"""
