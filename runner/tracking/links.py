"""Where to look: the command that serves a store in MLflow's UI, and UI addresses that open on the
answer (the runs table, a run's figure, the sweep's runs on one chart)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from urllib.parse import quote


# MLflow 3.17's server starts seven job-runner processes for its GenAI features (scorers, trace roll-ups),
# which the runs here never use: each imports MLflow, ~14 s of CPU in all and 1.6 GB, on the cores that
# serve the page.  Off, a fresh server's first runs table of 1000 runs loads in 3 s instead of 8 (measured)
UI_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # for a server started from Python
NO_JOB_RUNNERS = " ".join(f"{key}={value}" for key, value in UI_ENVIRONMENT.items())  # in a command
# ``mlflow ui`` serves with 4 processes by default, each importing MLflow's server: one serves a user's
# browser as quickly (its requests run on threads) and answers in 4.5 s instead of 7.5, in 0.5 GB, not 1.3
UI_WORKERS = 1


def ui_command(uri: str) -> str:
    """The command that opens ``uri`` in MLflow's UI, runnable from a fresh shell (no venv needed), without
    MLflow's GenAI job runners (``NO_JOB_RUNNERS``), on one server process (``UI_WORKERS``)."""
    beside = Path(sys.executable).parent / "mlflow"
    program = shlex.quote(str(beside)) if beside.exists() else f"{shlex.quote(sys.executable)} -m mlflow"
    return f"{NO_JOB_RUNNERS} {program} ui --workers {UI_WORKERS} --backend-store-uri {shlex.quote(uri)}"


UI = "http://127.0.0.1:5000"  # where ``mlflow ui`` serves by default


def is_server(uri: str) -> bool:
    """Whether ``uri`` is an MLflow server's, which serves its own UI (at that address): no ``mlflow ui``."""
    return uri.startswith(("http://", "https://"))


def ui_address(uri: str) -> str:
    """Where a browser shows the store at ``uri``: the server's own address, or ``mlflow ui``'s default."""
    return uri.rstrip("/") if is_server(uri) else UI


# MLflow 3's UI in its "Model training" view (runs, their metrics and charts), not the GenAI one it opens an
# experiment in (an overview of traces, empty here): the query a click on "Model training" adds to the address
MODEL_TRAINING = "workflowType=machine_learning"


def runs_url(experiment_id: str, ui: str = UI) -> str:
    """The experiment's runs table, in the Model training view (MLflow 3 opens a bare ``#/experiments/<id>``
    on its GenAI overview; with the query, on this table)."""
    return f"{ui}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING}"


def run_url(experiment_id: str, run_id: str, artifact: str | None = None, ui: str = UI) -> str:
    """A run's page, or with ``artifact`` its artifact view opened on that file, in the Model training view."""
    page = f"{ui}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{page}/artifacts/{artifact}?{MODEL_TRAINING}" if artifact else f"{page}?{MODEL_TRAINING}"


MAX_CHART_RUNS = 100  # a chart link names every run: beyond this the URL runs to kilobytes and the chart is a blur


def profiles_link(experiment_id: str, run_ids: list[str], metric: str, ui: str = UI) -> str:
    """What the closing lines give for a sweep's profiles: the chart of its runs, or for more than
    ``MAX_CHART_RUNS`` runs where to pick some: the runs table, whose chart view draws the selected runs."""
    if len(run_ids) <= MAX_CHART_RUNS:
        return chart_url(experiment_id, run_ids, metric, ui)
    return (f"{len(run_ids)} runs, more than a chart link names ({MAX_CHART_RUNS}): select some in "
            f"{runs_url(experiment_id, ui)} and open its chart view on {metric}")


def chart_url(experiment_id: str, run_ids: list[str], metric: str, ui: str = UI) -> str:
    """MLflow's metric page: ``metric`` of every run in ``run_ids`` on one chart (the URL its own
    "plot chart" link builds); a profile metric's step is the layer index."""
    runs, keys = json.dumps(run_ids, separators=(",", ":")), json.dumps([metric])
    query = (f"runs={runs}&metric={quote(json.dumps(metric))}&experiments={json.dumps([experiment_id])}"
             f"&plot_metric_keys={quote(keys)}&plot_layout={{}}&x_axis=step&y_axis_scale=linear"
             f"&line_smoothness=1&show_point=true&deselected_curves=[]&last_linear_y_axis_range=[]&{MODEL_TRAINING}")
    return f"{ui}/#/metric?{query}"


