"""joblib's workers for ``hydra/launcher=joblib``, started while the sweep is checked and let go as soon
as its jobs are done.  Started by the launcher, each worker would start, and import NumPy, Hydra and our
modules (MLflow too with ``tracking=mlflow``), only when the first job reaches it, after every job was
checked: ~1 s, ~3 s with MLflow (measured); and the launching process would wait for them to exit
(~1 s with MLflow) only once the sweep's report is made.

The workers are started by a ``joblib.Parallel`` of the launcher's own settings, so the launcher's
``Parallel`` finds joblib's reusable executor with the same settings and reuses it
(``tests/test_sweeps.py`` checks that the jobs run in the processes started here).  Should a later
joblib not reuse it, the launcher starts its own workers as before: only the head start is lost.

Not every worker imports at once: the launching process checks the jobs meanwhile, and on 2 cores a
launching process and two workers importing MLflow shared them until all three were done (the first job
~0.9 s later, measured).  All but one core's worth of workers import at once; the others wait at a gate
(``_Gate``) that the launching process opens once the jobs are checked and one worker is ready, and import
while the first jobs run.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import os
import shutil
import tempfile
import threading
import time

from omegaconf import DictConfig, OmegaConf

from ..processes import ctrl_c_ignored_between_jobs, imports_unscanned

log = logging.getLogger(__name__)
JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
TASK_MODULES = ("runner.cli", "hydra_plugins.hydra_joblib_launcher._core")  # what every job unpickles
MLFLOW_MODULES = ("runner.tracking.runs", "runner.tracking.writer", "runner.tracking.store", "runner.sweep.parent_run")


class JoblibWorkers:
    """The launcher's workers, started on a thread: ``ready()`` waits until one has imported what its jobs
    need and lets the others import; ``release()`` lets them exit once no job is left for them (they are the
    reusable executor's, which outlives the launcher's calls), ``stop()`` ends them at once."""

    def __init__(self, settings: dict, modules: tuple[str, ...]) -> None:
        # imported here: only joblib's sweeps pay for it
        from joblib import Parallel, cpu_count, delayed, effective_n_jobs

        self.pids: list[int] = []  # of the workers started here
        self.one_ready = threading.Event()  # (also set when they could not start)
        n_workers = effective_n_jobs(settings.get("n_jobs"))
        self.gate = _Gate(at_once=max(1, min(n_workers, cpu_count() - 1)))  # a core for the launching process
        calls = [delayed(_imported)(modules, self.gate) for _ in range(n_workers)]
        # each worker's pid as it is ready: the first lets the launcher go on
        parallel = Parallel(**settings, return_as="generator_unordered")
        self.thread = threading.Thread(target=self._start, args=(parallel, calls), name="joblib workers", daemon=True)
        self.thread.start()

    @classmethod
    def start(cls, config: DictConfig) -> JoblibWorkers | None:
        """The workers of ``config``'s launcher started, if it is joblib's; else None."""
        launcher = config.hydra.launcher
        if launcher.get("_target_") != JOBLIB_LAUNCHER:
            return None
        from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

        settings = {k: v for k, v in OmegaConf.to_container(launcher, resolve=True).items() if k != "_target_"}
        settings["backend"] = "loky"  # as the launcher sets it: the only backend it runs
        process_joblib_cfg(settings)
        settings["verbose"] = min(settings.get("verbose") or 0, 50)  # above 50, joblib passes it to the executor
        return cls(settings, TASK_MODULES + (MLFLOW_MODULES if config.tracking.name == "mlflow" else ()))

    def _start(self, parallel, calls: list) -> None:
        try:
            for pid in parallel(calls):
                self.pids.append(pid)
                self.one_ready.set()
            self.pids.sort()
            log.debug("joblib's workers %s started ahead of the jobs", self.pids)
        except BaseException as err:  # noqa: BLE001 (the launcher starts its workers itself then, and says why;
            # Ctrl-C reaches the workers too, and is the main thread's to handle)
            log.debug("joblib's workers did not start ahead of the jobs: %r", err)
        finally:
            self.one_ready.set()

    def ready(self) -> None:
        """The jobs are checked: wait until a worker has started and imported (before the launcher sends
        jobs or calls), and let the others import."""
        self.one_ready.wait()
        self.gate.open()

    @property
    def started(self) -> bool:
        """Whether the workers started here (after ``ready``: one at least): else the launcher starts its own."""
        return bool(self.pids)

    def call(self, module: str, name: str, *args):
        """``module.name(*args)``, run in one of the started workers (which have imported what it needs) and
        returned (or raised) here.  A Ctrl-C there is ignored (they ignore it between jobs)."""
        pid, result = _executor().submit(_called, module, name, args).result()
        log.debug("%s.%s ran in joblib's worker %s", module, name, pid)
        return result

    def release(self) -> None:
        """The jobs are done: the workers exit while the launching process goes on (its report)."""
        self.gate.open()
        self.thread.join()
        self.gate.remove()
        _executor().shutdown(wait=False)

    def stop(self) -> None:
        """End the workers now: nothing will run on them (a sweep refused, or interrupted while checked)."""
        self.gate.open()
        self.thread.join()
        self.gate.remove()
        _executor().shutdown(wait=True, kill_workers=True)


class _Gate:
    """Where workers wait their turn to import: a folder in which the first ``at_once`` to arrive take a
    place (a file each, created exclusively) and the others wait for the file ``open``."""

    def __init__(self, at_once: int) -> None:
        self.folder, self.at_once = tempfile.mkdtemp(prefix="backprop-lab-workers-"), at_once

    def open(self) -> None:
        if os.path.isdir(self.folder):
            open(os.path.join(self.folder, "open"), "w").close()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def wait_turn(self, poll_seconds: float = 0.02) -> None:
        """In a worker: return at once among the first ``at_once``, else once the gate is open (or gone, or
        the launching process is)."""
        arrived = 0
        while True:
            try:
                os.close(os.open(os.path.join(self.folder, f"arrived-{arrived}"), os.O_CREAT | os.O_EXCL))
                break
            except FileExistsError:
                arrived += 1
            except OSError:  # the gate is gone
                return
        if arrived < self.at_once:
            return
        launcher = os.getppid()  # the launching process, until it is gone (its orphans are adopted)
        while not os.path.exists(os.path.join(self.folder, "open")) and os.path.isdir(self.folder) \
                and os.getppid() == launcher:
            time.sleep(poll_seconds)


def _executor():
    """joblib's reusable executor, the one its workers serve (a new one, with no process yet, if none is)."""
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(reuse=True)


def _called(module: str, name: str, args: tuple) -> tuple[int, object]:
    return os.getpid(), getattr(importlib.import_module(module), name)(*args)


def _imported(modules: tuple[str, ...], gate: _Gate) -> int:
    """In a worker: the modules its jobs need, imported, and its exit made quick (as ``processes.command``
    makes a command's); returns the worker's pid.  Ctrl-C reaches the workers too: during these imports (a
    second or more) it printed an import's traceback from each, and between jobs the pool loop's.  Ignored
    from here on except within a job (which closes its run as killed), it ends the sweep through the
    launching process; one that lands earlier, while the worker's interpreter starts (loky's bootstrap,
    before any of ours), still shows the worker's traceback."""
    ctrl_c_ignored_between_jobs()
    gate.wait_turn()
    with imports_unscanned():
        for module in modules:
            importlib.import_module(module)
    atexit.register(gc.freeze)
    return os.getpid()
