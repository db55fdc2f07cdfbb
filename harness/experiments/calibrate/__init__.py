"""`harness calibrate`: middlewares whose cost is known in advance, compared, and whether the
harness finds that cost (run), with its table, calibration.json and chart (render).

Built on compare; may import measures, render and the layers below.
"""
