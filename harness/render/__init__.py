"""What every experiment draws and tabulates alike: charts (matplotlib, Agg) and tables (rich and
Markdown) from plain sections.

May import load and stats, for the series and estimates it draws; no measure and no experiment.
"""
