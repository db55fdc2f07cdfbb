"""`harness run URL --rate`: the open model against any URL, k6 at each rate, and with an SLO the
capacity (run); its table and NAME.latency.json (render).

Built on sweep and on compare's capacity search; may import measures, render and the layers below.
"""
