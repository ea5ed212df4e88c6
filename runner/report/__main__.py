"""``python -m runner.report EXPERIMENT``: see ``runner.report.make``."""

from ..processes import command
from .cli import main as run_command


def main() -> None:
    command(run_command)


if __name__ == "__main__":
    main()
