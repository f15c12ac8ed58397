"""Latency and memory: peak trackers, device facts, and the ``task=perf`` comparison task.

``python -m evalkit.perf report <dirs…> [--out DIR]`` merges perf results into one table and plot.
"""
