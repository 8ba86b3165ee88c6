"""Plotly figure builders: pure functions from results to figures, one module per topic.

``common`` holds the shared look (fonts big enough for a projector, colours) and the data / training
figures; the topic modules (``pruning``, ``lottery``, ``quant``, ``integer``) build on it.
"""
