"""``python -m runner`` and the ``backprop-lab`` console script."""

from .cli import main

if __name__ == "__main__":
    main()
