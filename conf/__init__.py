"""The Hydra config tree, packaged so that an installed backprop-lab finds it."""
