"""Figures of one run, and what every figure shares; ``python -m runner.figures`` draws them for a
sweep's jobs."""
