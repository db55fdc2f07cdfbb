"""The `harness` command line: the click group (`main.py`) and one module per command, named
after it.

Each command parses its options, calls a keyword-only function of its experiment, and hands the
result to the experiment's render. May import every other package of the harness; none imports
it.
"""
