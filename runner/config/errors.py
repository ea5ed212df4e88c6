"""User errors as one line, ``backprop-lab: error: <key>=<value>: <rule>``, and the exceptions that
carry a command's outcome past Hydra (``Refused``, ``SweepFailed``, ``Crashed``).  Hydra's and
OmegaConf's own exceptions are put in these words by ``runner.config.hydra_errors``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

PROG = "backprop-lab"


class ConfigError(ValueError):
    """A config value breaks a rule: ``ConfigError("optimizer.lr=0", "must be > 0")``, or one
    message that already names the key, the value and the rule."""

    def __init__(self, subject: str, rule: str | None = None) -> None:
        super().__init__(subject if rule is None else f"{subject}: {rule}")


SYNONYMS = {"learning_rate": "lr", "rate": "lr", "layers": "depth", "n_layers": "depth", "units": "width",
            "hidden": "hidden_sizes", "batch": "batch_size", "steps": "max_steps", "iterations": "epochs"}


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'relu'?"`` for the closest candidate (or a common synonym), or ``""``."""
    candidates = [str(c) for c in candidates]
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not match and SYNONYMS.get(word) in candidates:
        match = [SYNONYMS[word]]
    return f"; did you mean {match[0]!r}?" if match else ""


def one_line(message: str) -> str:
    """``message`` folded onto one line (error messages from libraries run over several)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


class Refused(BaseException):
    """A command refused before any work: one line on stderr, exit status 2.  A BaseException so
    that Hydra, which turns a callback's ``Exception`` into a warning, lets it through."""


class SweepFailed(BaseException):
    """Some jobs of a sweep failed at run time (the others ran): exit status 1 after the summary."""


class Crashed(BaseException):
    """A bug inside a Hydra callback (which Hydra would reduce to a warning): re-raised by the
    command with its traceback, the original exception being its ``__cause__``."""
