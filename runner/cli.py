"""``backprop-lab`` and ``python -m runner``: Hydra's app, with every user error as one line (exit
status 2), ``--version``, exit status 1 for a sweep whose jobs failed and 130 (or 128 + the signal)
for an interrupted command."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
import sys

import hydra
import numpy
from omegaconf import DictConfig

from .config.checks import deletion_problem, logging_level_problem, repeated_keys
from .config.errors import PROG, Crashed, Refused, SweepFailed
from .config.hydra_errors import is_user_error, user_error_line
from .config.options import register
from .config.overrides import readable_key_values
from .config.schema import GROUPS
from .processes import Interrupted, interrupted_by_sigterm, interruption_in, raise_lost_interruption
from .run.job import JobResult
from .run.train import train
from .sweep.closing import close_interrupted_sweep

register()  # the config schemas, before Hydra composes anything


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def hydra_app(cfg: DictConfig) -> JobResult:
    raise_lost_interruption()  # (while Hydra set the run up: a sweep's job run by the launching process too)
    return train(cfg)


def main() -> None:
    """``backprop-lab``: Hydra's app, with one line and exit status 2 for every user error."""
    arguments = sys.argv[1:]
    if "--version" in arguments:
        print(version_line())
        return
    # joblib's workers, killed by Ctrl-C, leave semaphores that Python's resource tracker (a process of its
    # own, started with these options) reports in a second stderr line after ours: it cleans them up anyway
    if "ignore:resource_tracker:UserWarning" not in sys.warnoptions:
        sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    sys.argv[1:] = arguments = switch_first(arguments)
    overrides = [a for a in arguments if not a.startswith("-")]
    try:
        if problem := (option_path_problem(overrides) or deletion_problem(overrides)
                       or logging_level_problem(overrides)):
            exit_with_error(problem)
        for repeated in repeated_keys(overrides):
            print(f"{PROG}: warning: {repeated}", file=sys.stderr)
        try:
            _run_hydra()
        except (Exception, Crashed) as err:  # a Ctrl-C that broke what it landed in: the command was interrupted
            if (interruption := interruption_in(err)) is None:
                raise
            raise interruption from None
    except Refused as err:
        exit_with_error(str(err))
    except Crashed as err:
        raise err.__cause__ from None
    except SweepFailed as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        sys.exit(1)
    except (KeyboardInterrupt, Interrupted) as err:
        reason = str(err) or "SIGINT"
        multirun = "-m" in arguments or "--multirun" in arguments
        closed = close_interrupted_sweep(reason) or next(iter(getattr(err, "__notes__", [])), None) or (
            "the sweep stopped before its first job" if multirun else "the run stopped before it started")
        print(f"{PROG}: interrupted ({reason}); {closed}", file=sys.stderr)
        sys.exit(130 if isinstance(err, KeyboardInterrupt) else 128 + err.signum)
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or not is_user_error(err):
            raise
        exit_with_error(user_error_line(err, overrides))


def _run_hydra() -> None:
    """Hydra's app with ``HYDRA_FULL_ERROR=1`` (Hydra then re-raises its errors as they are, and ``main``
    puts them in one line); the user's own setting is restored after."""
    user_setting = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with interrupted_by_sigterm():  # a sweep's launching process too closes what it leaves
            hydra_app()
    finally:
        if user_setting is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = user_setting


MULTIRUN = ("-m", "--multirun")


def switch_first(arguments: list[str]) -> list[str]:
    """``-m`` moved before the overrides: Hydra's parser takes one run of overrides, so in
    ``activation=relu -m architecture.depth=2,4`` it stopped at the second ("unrecognized arguments")."""
    return [a for a in arguments if a in MULTIRUN] + [a for a in arguments if a not in MULTIRUN]


def option_path_problem(overrides: list[str]) -> str | None:
    """``experiment=../config``: a group's option is a name, never a path (Hydra would compose the file
    it reaches, and fail on something else, or succeed on the wrong config)."""
    for key, value in readable_key_values(overrides).items():
        if key in (*GROUPS, "experiment") and ("/" in value or value.startswith(".")):
            folder = importlib.resources.files("runner.conf") / key
            options = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
            return f"{key}={value}: an option's name, not a path; {key} options: {', '.join(options)}"
    return None


def exit_with_error(message: str) -> None:
    folded = message.replace("\r", "\\r").replace("\n", "\\n")  # a value typed with a newline stays on one line
    print(f"{PROG}: error: {folded}", file=sys.stderr)
    sys.exit(2)


def version_line() -> str:
    version = importlib.metadata.version
    return (f"{PROG} {version('backprop-lab')} (Python {sys.version.split()[0]}, NumPy {numpy.__version__}, "
            f"Hydra {version('hydra-core')}, MLflow {version('mlflow')})")
