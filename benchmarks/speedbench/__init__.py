"""The parts of benchmarks/speed.py: shared helpers, one module per measurement, the ceiling, the report."""
