"""Reports built from result files, read through the result store: the seed article's comparison
table (``seed``) and the perf task's merged latency/memory report (``perf``;
``python -m evalkit.reports perf <dirs…>``)."""
