"""``python -m runner`` and the ``backprop-lab`` console script."""

import sys

try:
    from .processes import command
except KeyboardInterrupt:  # Ctrl-C as the command starts, before ``command`` guards the rest: one line too
    print("backprop-lab: interrupted (SIGINT) while starting; nothing was written", file=sys.stderr)
    raise SystemExit(130) from None


def main() -> None:
    command("runner.cli", "backprop-lab")


if __name__ == "__main__":
    main()
