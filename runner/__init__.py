"""backprop-lab's runner: the Hydra app that trains compositions and tracks them in MLflow."""
