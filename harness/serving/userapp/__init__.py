"""Your own app as a target: import it from a spec, tell its interface, list its middleware
layers, keep a subset and add extra middlewares innermost (entry.py: what a server process runs).

May import only the standard library (and, lazily, gunicorn and this project's middleware for
`spin:N`): a server process loads this before the user's app, whose packages may share our names.
"""
