"""backprop-lab's runner: the Hydra app that trains compositions and tracks them in MLflow."""

import os

# MLflow sends its own INFO lines (a fresh store's "Creating initial MLflow database tables...") to
# stderr, past the job's logging config, as it is imported; its warnings and errors still show.
# MLFLOW_LOGGING_LEVEL=INFO brings the rest back.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
