"""`harness demo`: the source document's story measured on this machine (run), its findings, the
server axis, and its report (render: Markdown and one self-contained HTML file).

Built on compare, profile and sweep; may import measures, render and the layers below.
"""
