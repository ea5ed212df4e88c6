"""backprop-lab's Hydra plugins: Hydra looks for sweepers in the ``hydra_plugins`` namespace package only."""
