"""Processes: is a pid still the process that wrote a run (psutil: portable), SIGTERM turned into an
exception that closes the run, and a worker that stops when the sweep that launched it is gone."""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import signal
import socket
import sys
import threading
import time

LAUNCHER_PID = "BACKPROP_LAB_LAUNCHER_PID"  # set by a sweep's launching process for its workers
VARYING_KEYS = "BACKPROP_LAB_VARYING_KEYS"  # the sweep's keys whose value differs between jobs (JSON list)
SWEEP_ID_OF_JOBS = "BACKPROP_LAB_SWEEP_ID"  # the sweep's id (its sweep_id tag), told every job by its launching process
CLOSED_AS_KILLED = "the run is closed as killed"  # noted on the interruption that closed a run so (add_note)


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) arrived: the run is closed as killed on the way out.  A BaseException,
    like KeyboardInterrupt, so that nothing on the way treats it as an ordinary error."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interruption_in(err: BaseException) -> BaseException | None:
    """The Ctrl-C or SIGTERM (KeyboardInterrupt, ``Interrupted``) among what led to ``err``, if any: one
    that lands inside a library's clean-up surfaces as that library's error (OmegaConf, interrupted as it
    restored a config's flags, raised ``AttributeError: 'NoneType' object has no attribute
    '_invalidate_flags_cache'``)."""
    pending, seen = [err], set()
    while pending:
        err = pending.pop()
        if err is None or id(err) in seen:
            continue
        if isinstance(err, (KeyboardInterrupt, Interrupted)):
            return err
        seen.add(id(err))
        pending += [err.__context__, err.__cause__]
    return None


def process_start_time(pid: int) -> str | None:
    """When ``pid`` started (seconds since the epoch, to 10 ms), or None if there is no such process.
    With the pid it identifies a process: a pid can be reused, the pair cannot."""
    import psutil  # here: a command imports this module first, before it guards its start (``command``)

    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.Error:
        return None


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether ``pid`` runs (and, given ``start_time``, is still the same process).  A zombie (ended,
    not yet reaped by its parent: a killed worker for a moment) does not."""
    import psutil  # (as above)

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and (
            start_time is None or f"{process.create_time():.2f}" == start_time)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists, owned by another user


_raised: list[int] | None = None  # in a command's process (``command``), the signals ``_interrupt`` raised


def _interrupt(signum, frame):
    """A command's handler of SIGINT (KeyboardInterrupt, as Python's own) and, within
    ``interrupted_by_sigterm``, of SIGTERM (``Interrupted``): each remembered for ``raise_lost_interruption``."""
    if _raised is not None:
        _raised.append(signum)
    raise _interruption(signum)


def _interruption(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Interrupted(signum)


def raise_lost_interruption() -> None:
    """Called as each step of a command starts (Hydra's callbacks, the task): a Ctrl-C or SIGTERM raised
    earlier, which would have ended the command before this step, is raised again.  One that lands in a
    library's clean-up surfaces as that library's error (``interruption_in``), and a library that catches
    every error dropped it: Hydra's ``get_mode``, as it composes the config a first time, returned None
    for an OmegaConf error raised while a Ctrl-C unwound it, and the command ran as if never interrupted
    (exit status 0: 1 Ctrl-C in about 100 at 0.2-0.7 s after the start on two busy cores, measured)."""
    if _raised:
        signum = _raised[-1]
        _raised.clear()
        raise _interruption(signum)


@contextlib.contextmanager
def interrupted_by_sigterm():
    """Within the block SIGTERM raises ``Interrupted`` in the main thread, as SIGINT raises
    KeyboardInterrupt, so ``finally`` clauses run and the run is closed as killed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interruptions_deferred():
    """A Ctrl-C or SIGTERM within the block acted on at its end, not where it lands, so the block is done
    whole or not at all: MLflow's run made and its id kept (landing between the two, the run stayed
    RUNNING, owned by nobody), or a store made (landing in SQLAlchemy's weakref callbacks, it was printed as
    "ignored" and the command went on as if never interrupted: 1 Ctrl-C in 10 at a fresh store's
    creation).  At the end the first signal caught is handed to the handler the block found (SIGINT's
    raises KeyboardInterrupt, ``interrupted_by_sigterm``'s ``Interrupted``).  Nothing changes outside the
    main thread, nor for a signal that is ignored or has no Python handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    deferred = {signum: handler for signum, handler in previous.items() if callable(handler)}
    for signum in deferred:
        signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in deferred.items():
            signal.signal(signum, handler)
    if caught:
        deferred[caught[0]](caught[0], None)


REDELIVERY_SECONDS = 0.05  # once the callback that dropped it has returned; too short to notice


def redeliver_dropped_interruptions(unraisable) -> None:
    """``sys.unraisablehook`` of a command: a Ctrl-C or SIGTERM whose exception lands where Python cannot
    raise it (a weakref callback or ``__del__``, run by the garbage collector anywhere: SQLAlchemy's, MLflow's)
    is printed as "Exception ignored" and dropped, and the command goes on as if never interrupted.  Here it
    is sent again to the main thread, a moment later, from a thread of its own (sent from here, it would land
    in this hook and be dropped again); landing in such a place again, it comes back here again."""
    err = unraisable.exc_value
    if isinstance(err, (KeyboardInterrupt, Interrupted)):
        signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
        # to the main thread itself: its blocking call (a sleep, a wait on the workers) returns at once
        timer = threading.Timer(REDELIVERY_SECONDS, signal.pthread_kill, (threading.main_thread().ident, signum))
        timer.daemon = True
        timer.start()
        return
    sys.__unraisablehook__(unraisable)


@contextlib.contextmanager
def sigterm_held():
    """SIGTERM held back in this thread within the block, and in the processes and threads it starts
    there (they inherit the mask): a child forked here cannot receive it before ``helper_signals`` ran."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def helper_signals() -> None:
    """In a forked helper process (started under ``sigterm_held``): SIGTERM ends it at once, and Ctrl-C
    is left to its parent, which ends it.  The handler it inherited would not do: a Python handler runs
    only when the interpreter runs again, so a SIGTERM arriving just before a blocking wait (a pool's
    worker waiting for its next task) is lost, and the pool's terminate waits for it for ever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


_frozen = 0  # how many freeze_heap() this process is in


def freeze_heap() -> None:
    """From now until the matching ``thaw_heap()``, the objects alive now (and at any ``freeze_heap()``
    within) are left out of the garbage collector's passes, which otherwise walk all of them again:
    MLflow's, pandas' and Hydra's objects, a report's histories.  A full pass took 0.2-0.5 s in a sweep's
    launching process, and a seventh of the time of a report's figure processes, forked from it
    (measured).  What is made meanwhile is collected as ever."""
    global _frozen
    gc.freeze()
    _frozen += 1


def thaw_heap() -> None:
    """The end of a ``freeze_heap()``: at the outermost, everything is collected as before."""
    global _frozen
    _frozen -= 1
    if not _frozen:
        gc.unfreeze()


@contextlib.contextmanager
def heap_frozen():
    """``freeze_heap()`` within the block."""
    freeze_heap()
    try:
        yield
    finally:
        thaw_heap()


@contextlib.contextmanager
def imports_unscanned():
    """Imports within the block made with the garbage collector paused.  Importing MLflow, pandas or
    matplotlib makes hundreds of thousands of objects that live as long as the process, and each of
    the collector's full passes meanwhile walks all of them made so far: a third of MLflow's import
    (0.5 of 1.7 s, measured), paid again by every process of a sweep.  What the block imported is
    frozen out of later passes too (``freeze_heap``'s reasoning); with nothing imported (already
    loaded), nothing is frozen.  The collector runs again after the block, as it did before it."""
    enabled, loaded = gc.isenabled(), len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        if len(sys.modules) > loaded:
            gc.freeze()
        if enabled:
            gc.enable()


def command(module: str, prog: str, function: str = "main") -> None:
    """Import ``module`` and run its ``function`` as this process's command ``prog``.

    Ctrl-C while Python imports it (Hydra, NumPy, pandas: a second or more) ends the command with one
    line and status 130, not a traceback of the import: nothing has been written yet; so does one that
    escapes the command's own handling (which says what it stopped), and one that landed in a library's
    code and surfaced as another error (in a class's ``__set_name__``, a RuntimeError; in OmegaConf's
    clean-up, an AttributeError: both seen under load).  This module imports little, so that the
    command's start before this guard is only the interpreter's own (psutil is imported where used).  One that Python drops (landing in
    a weakref callback) is signalled again (``redeliver_dropped_interruptions``), and one that a library
    dropped is raised again as the command's next step starts (``raise_lost_interruption``).  When the command
    ends, a late Ctrl-C no longer changes how it ended, and what it leaves is frozen out of the garbage
    collector, so that the interpreter's exit does not walk every object again (~0.7 s once MLflow, pandas
    and matplotlib are imported; ~0.05 s so, measured).  Runs, files and logs are closed by then, and
    atexit handlers still run (temporary folders, logging)."""
    global _raised
    sys.unraisablehook = redeliver_dropped_interruptions
    _raised = []
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # (not where it is ignored: a background job)
        signal.signal(signal.SIGINT, _interrupt)
    try:
        try:
            with imports_unscanned():
                main = getattr(importlib.import_module(module), function)
        except (KeyboardInterrupt, Exception) as err:
            if not isinstance(interruption_in(err), KeyboardInterrupt):
                raise
            print(f"{prog}: interrupted (SIGINT) while starting; nothing was written", file=sys.stderr)
            raise SystemExit(130) from None
        try:
            main()
        except (KeyboardInterrupt, Exception) as err:  # one its own handling did not reach: one line still
            if not isinstance(interruption_in(err), KeyboardInterrupt):
                raise
            print(f"{prog}: interrupted (SIGINT)", file=sys.stderr)
            raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        gc.freeze()


_job_sigint = None  # a sweep worker's own SIGINT handler, which it takes back only while it runs a job


def ctrl_c_ignored_between_jobs() -> None:
    """In a sweep's worker process (joblib's): a Ctrl-C reaches every process of the terminal's group, and
    between jobs (in the pool's own loop, or while the worker starts) it printed the worker's traceback
    under the command's one line.  Ignored there, it ends the sweep through the launching process; a job
    takes it back (``ctrl_c_in_the_job``) and closes its run as killed."""
    global _job_sigint
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _job_sigint is None:
        _job_sigint = handler


@contextlib.contextmanager
def ctrl_c_in_the_job():
    """Within a job of a worker that ignores Ctrl-C between jobs, the worker's own SIGINT handler; anywhere
    else nothing changes."""
    if _job_sigint is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, _job_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_with_launcher(poll_seconds: float = 1.0) -> None:
    """In a worker process of a sweep: SIGTERM ourselves when the launching process is gone
    (killed with -9 too), so a killed sweep leaves no workers training into the void."""
    launcher = os.environ.get(LAUNCHER_PID)
    if not launcher or int(launcher) == os.getpid() or getattr(stop_with_launcher, "watching", False):
        return
    stop_with_launcher.watching = True
    pid, start = int(launcher), process_start_time(int(launcher))

    def watch() -> None:
        while process_alive(pid, start):
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the run is being closed (well under a second); then the worker ends
        os._exit(143)

    threading.Thread(target=watch, name="stop-with-launcher", daemon=True).start()


def this_process() -> str:
    """``host:pid:start``: this process, as a later command can tell whether it still runs (``alive``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start_time(os.getpid())}"


def alive(process: str) -> bool:
    """Whether the process ``this_process()`` named still runs; one on another host is taken to."""
    host, _, rest = process.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return process_alive(int(pid), None if start == "None" else start)
