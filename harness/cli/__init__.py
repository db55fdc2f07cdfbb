"""The `harness` command line: the click group (`main.py`) and one module per command.

Each command parses its options, calls a keyword-only function of a stage below, and hands the
result to `harness.output`. May import every other package of the harness; none imports it.
"""
