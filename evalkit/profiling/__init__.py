"""Measuring tools below every layer that measures: peak memory (RSS, CUDA; ``memory``) and the machine a
run ran on (``device``). The profiler callback that puts them into results is ``evalkit.callbacks.profiler``."""
