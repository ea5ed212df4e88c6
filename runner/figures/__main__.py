"""``python -m runner.figures FOLDER...``: see ``runner.figures.cli``."""

from ..processes import command

if __name__ == "__main__":
    command("runner.figures.cli", "python -m runner.figures")
