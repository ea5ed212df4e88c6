"""The report of a sweep or an experiment: its runs read from MLflow, tables, figures and one HTML
page; it only reads runs (it writes itself, and runs' missing figures, when asked)."""
