"""``python -m runner.report EXPERIMENT``: see ``runner.report.make``."""

from ..processes import command

if __name__ == "__main__":
    command("runner.report.cli", "python -m runner.report")
