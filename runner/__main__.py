"""``python -m runner`` and the ``backprop-lab`` console script."""

from .cli import main as run_command
from .processes import command


def main() -> None:
    command(run_command)


if __name__ == "__main__":
    main()
