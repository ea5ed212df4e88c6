"""``python -m runner.report EXPERIMENT``: see ``runner.report.make``."""

from .cli import main

if __name__ == "__main__":
    main()
