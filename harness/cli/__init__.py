"""The `harness` command line: the click group (`main.py`) and one module per command.

Each command parses its options and calls a keyword-only function of a stage below, then hands
the result to `harness.output`; it may import every other package of the harness.
"""
