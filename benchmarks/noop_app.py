"""A Hydra app that does nothing, with no config file: Hydra's own cost per job, the floor any Hydra
app pays in a sweep (``python benchmarks/noop_app.py -m +x='range(0,360)'``)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path=None)
def main(cfg: DictConfig) -> None:
    pass


if __name__ == "__main__":
    main()
