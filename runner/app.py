"""The Hydra app: compose, check, build, train, track; return the objective for sweepers.

``main`` is the console script: Hydra's app, with every user error as one line (exit status 2),
``--version``, and a non-zero exit for a sweep whose jobs failed.  ``train`` is one job, a short
sequence of named steps.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import math
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits

from backprop_core import DistributionRecorder, FitResult, fit, gradient_check, layer_key

from .build import Experiment, build
from .callbacks import close_interrupted_sweep, experiment_name, sweep_id_of
from .errors import PROG, ConfigError, Crashed, Refused, SweepFailed, hydra_error, yaml_error
from . import predictions
from .processes import VARYING_KEYS, Interrupted, interrupted_by_sigterm, stop_with_launcher
from .progress import ProgressBar
from .preflight import logging_level_problem, typed_overrides
from .records import HistoryCsv, as_recorded, config_hash, description_of, write_job_record
from .schema import GROUPS, register
from .stores import MAX_TAG_VALUE
from .threads import blas_threads

register()  # the config schemas, before Hydra composes anything
log = logging.getLogger("runner")
MAX_RUN_NAME = 120  # MLflow's runs table shows about this much of a name


@dataclass
class Job:
    """Who this job is, from Hydra's runtime config."""

    name: str
    preset: str | None
    overrides: list[str]
    multirun: bool
    num: int
    out_dir: Path
    sweep_id: str | None
    choices: dict[str, str | None]
    alone: bool = True  # no other job of its sweep runs beside it (a single run, or the basic launcher)
    cwd: Path | None = None  # where the command was started (the job may run in its own directory)

    @classmethod
    def current(cls) -> Job:
        hydra_cfg = HydraConfig.get()
        choices = dict(hydra_cfg.runtime.choices)
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        overrides = typed_overrides(hydra_cfg)
        alone = not multirun or "BasicLauncher" in str(hydra_cfg.launcher.get("_target_", ""))
        named = overrides
        if multirun and VARYING_KEYS in os.environ:  # set by the sweep's launching process
            varying = set(json.loads(os.environ[VARYING_KEYS]))
            named = [o for o in overrides if o.lstrip("+~").partition("=")[0] in varying] or overrides
        return cls(run_name(named, choices.get("experiment")), choices.get("experiment"), overrides, multirun,
                   hydra_cfg.job.num if multirun else 0, Path(hydra_cfg.runtime.output_dir),
                   sweep_id_of(hydra_cfg.sweep.dir) if multirun else None, choices, alone, Path(hydra_cfg.runtime.cwd))


@dataclass
class Outcome:
    status: str  # finished | diverged | failed | killed | skipped
    result: FitResult | None = None
    summary: dict | None = None
    seconds: float = 0.0
    run_id: str | None = None
    detail: str = ""

    @property
    def objective(self) -> float:
        """What a sweeper minimises: the final validation loss; +inf unless the run finished with a finite one
        (with ``trainer.divergence_guard=false`` a run finishes its updates through NaN)."""
        if self.status not in ("finished", "skipped") or not self.summary:
            return math.inf
        loss = float(self.summary.get("final/val_loss", math.inf))
        return loss if math.isfinite(loss) else math.inf


def run_name(overrides: list[str], preset: str | None) -> str:
    """``activation=relu,init=he_normal,depth=8`` from the job's overrides (keys shortened to their leaf)."""
    parts = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key not in ("experiment", "resume", "description") and not key.startswith("tracking"):  # what decides it
            parts.append(f"{key.rsplit('.', 1)[-1]}={shortest(value)}")
    name = ",".join(parts) or preset or "default"
    return name if len(name) <= MAX_RUN_NAME else name[:MAX_RUN_NAME - 3] + "..."  # the whole is the overrides tag


def shortest(value: str) -> str:
    """A number in its shortest form to 12 significant digits (``range()`` sums its steps: it gives
    ``0.15000000000000002``, named ``0.15``); anything else, and a number typed shorter, as typed."""
    try:
        number = float(value)
    except ValueError:
        return value
    short = format(number, ".12g")
    return short if len(short) < len(value) else value


def params_of(cfg: DictConfig, choices: dict[str, str | None]) -> dict[str, str]:
    """The composed group choices and every short leaf value, keyed by dotted path."""
    params = {group: choice for group, choice in choices.items() if choice and not group.startswith("hydra")}
    flat: dict[str, object] = {}

    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{path}.")
            elif value is not None and len(str(value)) <= 250:
                flat[path] = value

    walk(as_recorded(cfg), "")
    flat.pop("description", None)
    # a group's option is the param ``init``; ``init.name`` would say it again
    return params | {k: str(v) for k, v in flat.items() if not (k.endswith(".name") and k[:-5] in params)}


PROFILES = ("grad_norm", "delta_norm", "act_std", "saturation")  # profile/<name>_init and _final
LOG10_PROFILES = ("grad_norm", "delta_norm")  # also profile/log10_<name>_init and _final


def swept_values(overrides: list[str]) -> dict[str, float]:
    """The job's numeric overrides as metrics, ``swept/optimizer.lr``: MLflow's runs table sorts params
    as text (``1e-3`` after ``0.1``) but metrics as numbers."""
    values = {}
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            values[f"swept/{key}"] = number
    return values


def summary_metrics(result: FitResult, n_layers: int) -> dict[str, float]:
    """``final/*`` (the closing record's), the first/last layer gradient ratio at step 0 and its log10
    (it spans decades: the runs table reads the exponent), and ``diverged_at_step``."""
    summary = {f"final/{key.replace('/', '_')}": value for key, value in result.final.items()}
    if result.history:
        first = result.history[0]
        last_layer = first[layer_key("grad_norm", n_layers, n_layers)]
        first_layer = first[layer_key("grad_norm", 1, n_layers)]
        ratio = first_layer / last_layer if last_layer else math.nan
        summary["grad_ratio_first_last"] = ratio
        summary["log10_grad_ratio_first_last"] = math.log10(ratio) if ratio > 0 else math.nan
    if result.diverged:
        summary["diverged_at_step"] = float(result.diverged_at_step)
    return summary


def profile_metrics(result: FitResult, n_layers: int) -> dict[str, list[float]]:
    """Per-layer profiles as metrics whose step is the layer index 1..L: ``profile/grad_norm_init``
    (step 0's record) and ``profile/grad_norm_final`` (the closing record's), so one MLflow line chart
    draws norm against layer for every selected run."""
    profiles = {}
    for when, record in (("init", result.history[0]), ("final", result.history[len(result.history) - 1])):
        for name in PROFILES:
            values = [record.get(layer_key(name, k, n_layers)) for k in range(1, n_layers + 1)]
            if all(v is not None for v in values):
                profiles[f"profile/{name}_{when}"] = values
                if name in LOG10_PROFILES:  # spans decades: the exponent reads on MLflow's default linear axis
                    profiles[f"profile/log10_{name}_{when}"] = [math.log10(v) if v > 0 else math.nan for v in values]
    return profiles


# ---------------------------------------------------------------------------------------- one job
def train(cfg: DictConfig) -> float:
    """Train the composition ``cfg``; returns the final validation loss (inf unless it finished)."""
    job = Job.current()
    log.info("run directory: %s", job.out_dir)
    with threadpool_limits(limits=1, user_api="blas"), interrupted_by_sigterm():  # never inherited
        if job.multirun:
            stop_with_launcher()
        exp = _build(cfg, job)
        if exp is None:
            return math.inf
        tracker = _open_tracker(cfg, job)
        reused = _reusable_run(cfg, job, tracker)
        threads = blas_threads(cfg.trainer.threads, exp.net.sizes, exp.trainer.batch_size or len(exp.data.X_train),
                               job.alone)
        log.debug("BLAS threads: %d", threads)
        with threadpool_limits(limits=threads, user_api="blas"):
            outcome = reused or _train_and_record(cfg, exp, job, tracker)
    _record_job(job, outcome)
    _log_summary(job, outcome, tracker, exp.net.n_layers, len(exp.data.X_val))
    return outcome.objective


def _build(cfg: DictConfig, job: Job) -> Experiment | None:
    """The experiment, checked.  A bad config is refused in a single run; in a sweep (where a
    sweeper such as Optuna drew it) the job is recorded as failed and the sweep goes on."""
    try:
        exp = build(cfg)
    except ConfigError as err:
        if not job.multirun:
            raise Refused(str(err)) from None
        log.error("%s: error: %s", PROG, err)
        _record_job(job, Outcome("failed", detail=str(err)))
        return None
    log.debug("built %r: %d parameters, %d training and %d validation samples, %s",
              exp.net, exp.net.n_params, len(exp.data.X_train), len(exp.data.X_val), exp.trainer)
    if (exp.trainer.batch_size or 0) > len(exp.data.X_train):
        log.warning("trainer.batch_size=%d exceeds the %d training samples: every step is full batch",
                    exp.trainer.batch_size, len(exp.data.X_train))
    return exp


def _open_tracker(cfg: DictConfig, job: Job):
    if cfg.tracking.name != "mlflow":
        return None
    from .stores import resolve_uri
    from .tracking import MlflowTracker, close_orphans, ensure_experiment, open_store, sweep_run

    uri, artifact_root, _ = resolve_uri(cfg.tracking.uri, job.cwd)
    client = open_store(uri, artifact_root=artifact_root)
    name = experiment_name(cfg, job.preset)
    experiment_id = ensure_experiment(client, name, artifact_root, description_of(cfg))
    tracker = MlflowTracker(client, experiment_id, name, cfg.tracking.detail)
    log.debug("tracking to %s, experiment %r (id %s)", uri, name, experiment_id)
    if not job.multirun:  # a sweep closes orphans once, in its launching process
        close_orphans(client)
    elif parent := sweep_run(client, experiment_id, job.sweep_id):
        tracker.parent_run_id = parent.info.run_id
    return tracker


def _reusable_run(cfg: DictConfig, job: Job, tracker) -> Outcome | None:
    """With ``resume=true``, a finished or diverged run of the same configuration is reused: it
    joins this sweep (its ``sweep_id`` and ``job_num`` are updated) and nothing is trained."""
    if not cfg.resume or tracker is None:  # preflight refuses resume=true with tracking=none
        return None
    from .tracking import reusable_run

    run = reusable_run(tracker.client, tracker.experiment_id, config_hash(cfg))
    if run is None:
        return None
    if job.sweep_id and run.data.tags.get("sweep_id") != job.sweep_id:
        adopted = {"previous_sweep_id": run.data.tags.get("sweep_id", ""), "sweep_id": job.sweep_id,
                   "job_num": str(job.num)}
        if tracker.parent_run_id:
            adopted["mlflow.parentRunId"] = tracker.parent_run_id
        for key, value in adopted.items():
            tracker.client.set_tag(run.info.run_id, key, value)
    summary = {k: v for k, v in run.data.metrics.items() if k.startswith("final/")}
    return Outcome("skipped", summary=summary, run_id=run.info.run_id,
                   detail=f"reuses run {run.info.run_id} ({run.data.tags.get('status')})")


def _train_and_record(cfg: DictConfig, exp: Experiment, job: Job, tracker) -> Outcome:
    """Fit with the history streamed to ``history.csv``; whatever happens, the MLflow run is closed:
    finished, diverged, failed (with its error) or killed."""
    if tracker:
        tags = {"kind": "job", "job_num": str(job.num), "overrides": " ".join(job.overrides)[:MAX_TAG_VALUE],
                "status": "running",
                "preset": job.preset or "none", "config_hash": config_hash(cfg)}
        if job.sweep_id:
            tags["sweep_id"] = job.sweep_id
            if tracker.parent_run_id:
                tags["mlflow.parentRunId"] = tracker.parent_run_id
        tracker.start(job.name, params_of(cfg, job.choices), tags, description_of(cfg))
    history_csv = HistoryCsv(job.out_dir / "history.csv")
    # first: its per-layer gradient percentiles join the record before the CSV and MLflow see it
    recorder = None
    if cfg.tracking.detail == "full":  # null: the recorder's own cadence
        every = cfg.tracking.histogram_every
        recorder = DistributionRecorder() if every is None else DistributionRecorder(every)
    callbacks = ([recorder] if recorder else []) + [ProgressBar(job.name, disable=True if job.multirun else None),
                                                     history_csv]
    outcome, artifacts, profiles, error = Outcome("failed", summary=swept_values(job.overrides)), [], {}, None
    tags = {}
    started = time.perf_counter()
    try:
        if cfg.trainer.check_gradients:
            outcome.summary |= _gradient_check(exp)
        if cfg.trainer.jacobian_samples:
            outcome.summary |= _jacobian_spectrum(exp, cfg.trainer.jacobian_samples, job.out_dir / "jacobian.npz")
        run_theory = predictions.run_theory(exp)  # before the fit: it reads the initial weights
        result = fit(
            exp.net, exp.loss, exp.optimizer, exp.data.X_train, exp.Y_train,
            trainer=exp.trainer, rng=exp.shuffle_rng, validation=(exp.data.X_val, exp.Y_val),
            classification=exp.data.classification, callbacks=callbacks + ([tracker] if tracker else []),
            keep_history="ends",
        )
        outcome.seconds = time.perf_counter() - started
        outcome.result = result
        outcome.summary |= summary_metrics(result, exp.net.n_layers)
        profiles = profile_metrics(result, exp.net.n_layers) if result.history else {}
        artifacts = _write_artifacts(cfg, history_csv.path, job.out_dir, job.name, recorder, _draws_figures(cfg, job))
        if cfg.trainer.jacobian_samples:
            artifacts.append((job.out_dir / "jacobian.npz", None))
        if run_theory and result.history:
            theory_metrics, theory_profiles, tags = predictions.record(run_theory, result.history[0], exp.net.n_layers)
            outcome.summary |= theory_metrics
            profiles |= theory_profiles
            artifacts.append((predictions.write_table(run_theory, result.history[0], exp.net.n_layers,
                                                      job.out_dir / "theory.csv"), None))
        outcome.status = "diverged" if result.diverged else "finished"
    except (KeyboardInterrupt, Interrupted):
        outcome.status = "killed"
        raise
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
        outcome.detail = error
        if not job.multirun:
            raise
        log.error("%s: job failed: %s\n%s", job.name, error, traceback.format_exc())
    finally:
        history_csv.close()
        if tracker:
            tracker.finish(outcome.status, outcome.summary, artifacts, error, profiles, tags)
            outcome.run_id = tracker.run_id
            if outcome.status in ("finished", "diverged"):
                _remove_local_copies(artifacts)
        if outcome.status == "killed":
            _record_job(job, outcome)
    return outcome


def _gradient_check(exp: Experiment) -> dict[str, float]:
    """Back-propagated against central-difference gradients at the initial weights (64 samples at most)."""
    result = gradient_check(exp.net, exp.data.X_train[:64], exp.Y_train[:64], exp.loss)
    log.info("gradient check at the initial weights: max relative error %.2e (%s: rtol 1e-6, atol 1e-9)",
             result.max_error, "passed" if result.passed() else "FAILED")
    metrics = {f"gradcheck/{key.replace('/', '_')}": error for key, error in result.errors.items()}
    return metrics | {"gradcheck/max_rel_error": result.max_error}


def _jacobian_spectrum(exp: Experiment, n_samples: int, path: Path) -> dict[str, float]:
    """The singular values of the input-output Jacobian (input to the last hidden layer) at the
    initial weights, on the first ``n_samples`` training samples: ``jacobian/*`` metrics, and every
    singular value in ``jacobian.npz`` (the report draws their density)."""
    from backprop_core.theory import jacobian, singular_values, spectrum

    values = singular_values(jacobian(exp.net, exp.data.X_train[:n_samples]))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, singular_values=values)
    return {f"jacobian/{key}": value for key, value in spectrum(values).items()}


def _draws_figures(cfg: DictConfig, job: Job) -> bool:
    """A run's own figures cost more than a short run's training (about 0.6 s of matplotlib): a single
    run draws them, a sweep's job only with ``tracking.run_figures=always``."""
    return cfg.tracking.run_figures == "always" or (cfg.tracking.run_figures == "auto" and not job.multirun)


def _write_artifacts(cfg: DictConfig, history_path: Path, out_dir: Path, title: str,
                     recorder: DistributionRecorder | None, figures: bool) -> list[tuple[Path, str | None]]:
    """``config.yaml`` beside the streamed ``history.csv``, with full detail ``distributions.npz``,
    and with ``figures`` the run's own figures; returns them all."""
    config_path = out_dir / "config.yaml"
    config_path.write_text(OmegaConf.to_yaml(as_recorded(cfg)))
    artifacts = [(config_path, None), (history_path, None)]
    if recorder is not None and recorder.steps:
        recorder.save(out_dir / "distributions.npz")
        artifacts.append((out_dir / "distributions.npz", None))
    if figures:
        from .plots import draw_run_figures

        artifacts += [(path, "plots") for path in draw_run_figures(out_dir, title)]
    return artifacts


def _remove_local_copies(artifacts: list[tuple[Path, str | None]]) -> None:
    """Once MLflow holds the run's files, the run directory does not keep a second copy."""
    for path, _ in artifacts:
        path.unlink(missing_ok=True)
    plots = {path.parent for path, folder in artifacts if folder == "plots"}
    for folder in plots:
        shutil.rmtree(folder, ignore_errors=True)


def _record_job(job: Job, outcome: Outcome) -> None:
    if not job.multirun:
        return
    write_job_record(job.out_dir, {
        "job_num": job.num, "name": job.name, "overrides": job.overrides, "status": outcome.status,
        "steps": outcome.result.steps if outcome.result else 0, "seconds": round(outcome.seconds, 3),
        "summary": outcome.summary or {}, "run_id": outcome.run_id, "detail": _detail(outcome),
    })


def _detail(outcome: Outcome) -> str:
    if outcome.status == "diverged" and outcome.result is not None:
        return f"at step {outcome.result.diverged_at_step}"
    return outcome.detail


def _log_summary(job: Job, outcome: Outcome, tracker, n_layers: int, n_val: int) -> None:
    """One line whose numbers all stand in the history (the closing record's), and where to look."""
    summary, result = outcome.summary or {}, outcome.result
    if outcome.status == "skipped":
        log.info("%s: skipped (resume=true): %s", job.name, outcome.detail)
        return
    if result is None:
        return
    if result.diverged:
        head = f"{job.name}: diverged at step {result.diverged_at_step} (a non-finite loss or gradient)"
    else:
        head = f"{job.name}: finished {result.steps} update{'s' * (result.steps != 1)}"
    parts = [f"{head} in {outcome.seconds:.1f}s"]
    final = [f"{label} {summary[key]:.4g}" for key, label in (
        ("final/train_loss", "train loss"), ("final/val_loss", "val loss")) if key in summary]
    if "final/val_accuracy" in summary:
        final.append(f"val accuracy {summary['final/val_accuracy']:.4g} (of {n_val})")
    if final and not result.diverged:
        parts.append(f"at step {result.steps}: " + ", ".join(final))
    if "grad_ratio_first_last" in summary:
        parts.append(f"|grad l1| / |grad l{n_layers}| at step 0 = {summary['grad_ratio_first_last']:.3g}")
    log.info("; ".join(parts))
    if tracker:
        from .tracking import run_url, ui_command

        log.info("MLflow: experiment %r, run %s. Open it with:  %s", tracker.experiment, tracker.run_id,
                 ui_command(tracker.uri))
        if not job.multirun:
            log.info("  then the run's page:  %s", run_url(tracker.experiment_id, tracker.run_id))
    else:
        log.info("history, config%s: %s", " and figures" if (job.out_dir / "plots").exists() else "", job.out_dir)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def hydra_app(cfg: DictConfig) -> float:
    return train(cfg)


# ---------------------------------------------------------------------------------------- the command
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
    overrides = [a for a in arguments if not a.startswith("-")]
    if problem := option_path_problem(overrides) or logging_level_problem(overrides):
        _exit_with_error(problem)
    user_setting = os.environ.get("HYDRA_FULL_ERROR")
    full_error = user_setting == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises its errors as they are; we report them in one line
    try:
        try:
            with interrupted_by_sigterm():  # a sweep's launching process too closes what it leaves
                hydra_app()
        finally:
            if user_setting is None:
                os.environ.pop("HYDRA_FULL_ERROR", None)
            else:
                os.environ["HYDRA_FULL_ERROR"] = user_setting
    except Refused as err:
        _exit_with_error(str(err))
    except Crashed as err:
        raise err.__cause__ from None
    except SweepFailed as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        sys.exit(1)
    except (KeyboardInterrupt, Interrupted) as err:
        reason = str(err) or "SIGINT"
        closed = close_interrupted_sweep(reason) or "the run is closed as killed"
        print(f"{PROG}: interrupted ({reason}); {closed}", file=sys.stderr)
        sys.exit(130 if isinstance(err, KeyboardInterrupt) else 128 + err.signum)
    except Exception as err:
        overrides = [a for a in arguments if not a.startswith("-")]
        if full_error or not _is_user_error(err):
            raise
        if _is_yaml_error(err):
            _exit_with_error(yaml_error(err, overrides))
        _exit_with_error(hydra_error(err, overrides))


def option_path_problem(overrides: list[str]) -> str | None:
    """``experiment=../config``: a group's option is a name, never a path (Hydra would compose the file
    it reaches, and fail on something else, or succeed on the wrong config)."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in (*GROUPS, "experiment") and ("/" in value or value.startswith(".")):
            folder = importlib.resources.files("runner.conf") / key
            options = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
            return f"{key}={value}: an option's name, not a path; {key} options: {', '.join(options)}"
    return None


def _is_yaml_error(err: BaseException) -> bool:
    import yaml

    return isinstance(err, yaml.YAMLError)


def _is_user_error(err: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, (HydraException, OmegaConfBaseException, ConfigError)) or _is_yaml_error(err)


def _exit_with_error(message: str) -> None:
    folded = message.replace("\r", "\\r").replace("\n", "\\n")  # a value typed with a newline stays on one line
    print(f"{PROG}: error: {folded}", file=sys.stderr)
    sys.exit(2)


def version_line() -> str:
    from importlib.metadata import version

    import numpy

    return (f"{PROG} {version('backprop-lab')} (Python {sys.version.split()[0]}, NumPy {numpy.__version__}, "
            f"Hydra {version('hydra-core')}, MLflow {version('mlflow')})")
