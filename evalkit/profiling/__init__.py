"""Measuring a run: peak memory (RSS, CUDA), the machine it ran on, and the profiler callback."""
