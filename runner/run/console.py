"""What a job says on the console.  A single run prints where its records are; a sweep's job prints its
summary line only (dozens of identical "Open it with" lines buried a sweep's closing lines, which say where
all of them are), and writes the rest to its ``app.log``."""

from __future__ import annotations

import logging

LOG_ONLY = {"log_only": True}  # ``extra`` of a record kept out of the console


def log_only(multirun: bool) -> dict | None:
    """The ``extra`` of a line about where a job's records are: in a sweep's job, for its app.log only."""
    return LOG_ONLY if multirun else None


class NotLogOnly(logging.Filter):
    """The console handler's filter (``conf/hydra/job_logging/backprop_lab.yaml``): drops the records logged
    with ``LOG_ONLY``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "log_only", False)
