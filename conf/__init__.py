"""The Hydra config tree, installed as ``runner.conf`` so that an installed backprop-lab finds it."""
