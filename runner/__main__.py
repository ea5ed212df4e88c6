"""``python -m runner`` and the ``backprop-lab`` console script."""

from .processes import command


def main() -> None:
    command("runner.cli", "backprop-lab")


if __name__ == "__main__":
    main()
