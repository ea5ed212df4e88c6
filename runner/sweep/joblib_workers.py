"""joblib's workers for ``hydra/launcher=joblib``, started while the sweep is checked and let go as soon
as its jobs are done.  Started by the launcher, each worker would start, and import NumPy, Hydra and our
modules (MLflow too with ``tracking=mlflow``), only when the first job reaches it, after every job was
checked: ~1 s, ~3 s with MLflow (measured); and the launching process would wait for them to exit
(~1 s with MLflow) only once the sweep's report is made.  While the sweep is checked, one worker fewer
than the cores imports (``_Checking``), so the checks keep a core; the sweep goes on as soon as one
worker is ready: the others take their first job once their imports are done.

The workers are started by a ``joblib.Parallel`` of the launcher's own settings, so the launcher's
``Parallel`` finds joblib's reusable executor with the same settings and reuses it
(``tests/test_sweeps.py`` checks that the jobs run in the processes started here).  Should a later
joblib not reuse it, the launcher starts its own workers as before: only the head start is lost.
"""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import logging
import os
import threading
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..processes import ctrl_c_ignored_between_jobs, imports_unscanned, process_alive, stop_with_launcher
from .config_store_once import ConfigStoreOnce

log = logging.getLogger(__name__)
JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
TASK_MODULES = ("runner.cli", "hydra_plugins.hydra_joblib_launcher._core")  # what every job unpickles
MLFLOW_MODULES = ("runner.tracking.runs", "runner.tracking.writer", "runner.tracking.store", "runner.sweep.parent_run")


class JoblibWorkers:
    """The launcher's workers, started on a thread: ``ready()`` waits until each has imported what its
    jobs need; ``release()`` lets them exit once no job is left for them (they are the reusable
    executor's, which outlives the launcher's calls), ``stop()`` ends them at once.  Meanwhile Hydra's
    ConfigStore goes to them once, not with every job (``config_store_once``)."""

    def __init__(self, settings: dict, modules: tuple[str, ...], sweep_dir: Path) -> None:
        from joblib import Parallel, delayed, effective_n_jobs  # imported here: only joblib's sweeps pay for it

        self.config_store = ConfigStoreOnce(sweep_dir).install()
        self.pids: list[int] = []  # of the workers started here, as each is ready
        self.first_ready = threading.Event()  # (set too where none could start)
        self.checking = _Checking()
        at_once = _cores() - 1  # workers that import while the sweep is checked; the others wait for it
        calls = [delayed(_imported)(modules, self.checking.path if i >= at_once else None)
                 for i in range(effective_n_jobs(settings.get("n_jobs")))]
        parallel = Parallel(**settings, return_as="generator_unordered")  # each worker's pid as it is ready
        self.thread = threading.Thread(target=self._start, args=(parallel, calls),
                                       name="joblib workers", daemon=True)
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
        return cls(settings, TASK_MODULES + (MLFLOW_MODULES if config.tracking.name == "mlflow" else ()),
                   Path(str(config.hydra.sweep.dir)).absolute())

    def _start(self, parallel, calls: list) -> None:
        try:
            for pid in parallel(calls):
                self.pids.append(pid)
                self.first_ready.set()
            log.debug("joblib's workers %s started ahead of the jobs", sorted(set(self.pids)))
        except BaseException as err:  # noqa: BLE001 (the launcher starts its workers itself then, and says why;
            # Ctrl-C reaches the workers too, and is the main thread's to handle)
            log.debug("joblib's workers did not start ahead of the jobs: %r", err)
        finally:
            self.first_ready.set()

    def checked(self) -> None:
        """The sweep is checked: the workers left waiting for a core import now."""
        self.checking.end()

    def ready(self) -> None:
        """Wait until a worker has started and imported what its jobs need: it takes the sweep's first calls
        (``call``) and job while the others finish their imports, which the launcher's further jobs wait for
        (each worker takes a job only once it has imported).  With MLflow the imports take seconds, and the
        slowest worker's finished ~0.5 s after the first's on two cores (measured)."""
        self.first_ready.wait()

    @property
    def started(self) -> bool:
        """Whether the workers started here (after ``ready``): else the launcher starts its own."""
        return bool(self.pids)

    def call(self, module: str, name: str, *args):
        """``module.name(*args)``, run in one of the started workers (which have imported what it needs) and
        returned (or raised) here.  A Ctrl-C there is ignored (they ignore it between jobs)."""
        pid, result = _executor().submit(_called, module, name, args).result()
        log.debug("%s.%s ran in joblib's worker %s", module, name, pid)
        return result

    def release(self) -> None:
        """The jobs are done: the workers exit while the launching process goes on (its report)."""
        self.checking.end()
        self.config_store.discard()
        self.thread.join()
        _executor().shutdown(wait=False)

    def stop(self) -> None:
        """End the workers now: nothing will run on them (a sweep refused, or interrupted while checked)."""
        self.checking.end()
        self.config_store.discard()
        self.thread.join()
        _executor().shutdown(wait=True, kill_workers=True)


class _Checking:
    """A lock the launching process holds while it checks the sweep, for which the workers beyond one
    fewer than the cores wait before they import: all at once, the imports and the checks shared the
    cores, and the first worker ready took the sweep's first job later.  (The 1000-job grid with MLflow,
    two workers on two cores: its first job 2.8-3.0 s after the command, 3.3-3.7 s with both importing
    at once; measured alternately, five each.)  The lock is a file (``fcntl.flock``), gone once the checks
    end, so a worker that starts later does not wait; the kernel lets go of it if the launching process dies."""

    PREFIX = "backprop-lab-checking-"  # then the launching process's pid (a sweep killed with -9 leaves its file)

    def __init__(self) -> None:
        import fcntl
        import tempfile

        for stale in Path(tempfile.gettempdir()).glob(f"{self.PREFIX}*-*"):
            pid = stale.name.removeprefix(self.PREFIX).split("-")[0]
            if pid.isdigit() and not process_alive(int(pid)):
                stale.unlink(missing_ok=True)
        descriptor, self.path = tempfile.mkstemp(prefix=f"{self.PREFIX}{os.getpid()}-")
        self.file = os.fdopen(descriptor, "wb")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def end(self) -> None:
        if not self.file.closed:
            Path(self.path).unlink(missing_ok=True)
            self.file.close()  # (which lets go of the lock)

    @staticmethod
    def wait(path: str) -> None:
        """In a worker: until the launching process's checks end."""
        import fcntl

        try:
            with open(path, "rb") as file:
                fcntl.flock(file, fcntl.LOCK_SH)
        except FileNotFoundError:  # the checks ended before this worker started
            pass


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _executor():
    """joblib's reusable executor, the one its workers serve (a new one, with no process yet, if none is)."""
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(reuse=True)


def _called(module: str, name: str, args: tuple) -> tuple[int, object]:
    ctrl_c_ignored_between_jobs()  # (a worker given none of the calls that start them, ``_imported``, too)
    return os.getpid(), getattr(importlib.import_module(module), name)(*args)


def _imported(modules: tuple[str, ...], checking: str | None) -> int:
    """In a worker: the modules its jobs need, imported, and its exit made quick (as ``processes.command``
    makes a command's); returns the worker's pid.  Ctrl-C reaches the workers too: during these imports (a
    second or more) it printed an import's traceback from each, and between jobs the pool loop's.  Ignored
    from here on except within a job (which closes its run as killed), it ends the sweep through the
    launching process; one that lands earlier, while the worker's interpreter starts (loky's bootstrap,
    before any of ours), still shows the worker's traceback."""
    stop_with_launcher()  # (a job starts it too: a launcher killed with -9 before any job had left them idle)
    ctrl_c_ignored_between_jobs()
    if checking:
        _Checking.wait(checking)
    with imports_unscanned():
        for module in modules:
            importlib.import_module(module)
        _plugins_scanned_once()
    atexit.register(gc.freeze)
    return os.getpid()


def _plugins_scanned_once() -> None:
    """In a worker: Hydra's plugins scanned once, not before every job.  The launcher's ``execute_job``
    restores Hydra's singletons for each job (``Singleton.set_state``), which leaves out the plugins and so
    scans every installed plugin again, executing each module under ``hydra_plugins`` anew: 14–28 ms a job
    here, a third of a worker's time between two jobs (measured with py-spy), more with more plugins
    installed.  The plugins installed do not change while a worker lives: its one scan is handed to each
    job's restored singletons (``tests/test_hydra_contract.py`` pins what this relies on)."""
    from hydra.core.plugins import Plugins
    from hydra_plugins.hydra_joblib_launcher import _core

    if getattr(_core.execute_job, "plugins", None) is not None:
        return
    plugins, execute_job = Plugins.instance(), _core.execute_job

    @functools.wraps(execute_job)
    def with_plugins_scanned(*args):
        args[-1]["instances"][Plugins] = plugins  # the last argument: the singletons' state it restores
        return execute_job(*args)

    with_plugins_scanned.plugins = plugins
    _core.execute_job = with_plugins_scanned
