"""Tracking: where the MLflow store is and how it opens whole, the run schema (statuses, tags, metric
keys), the writer of a run, and the links that open on the answer."""
