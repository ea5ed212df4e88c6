"""Take the README's MLflow screenshots in a real browser (headless Chromium), from a real sweep.

    .venv/bin/python scripts/screenshots.py                  # runs the vanishing_depth sweep first
    .venv/bin/python scripts/screenshots.py --store sqlite:////path/mlflow.db --experiment vanishing_depth \
        --where "params.activation = 'sigmoid'"      # the sweep's sigmoid runs (the default)

Needs ``chromium`` (Debian: ``apt-get install chromium``).  Starts ``mlflow server`` on a free port
of 127.0.0.1, opens MLflow's metric page (the URL its own "plot chart" link builds) for the sweep's
runs with a logarithmic y axis, and writes ``docs/figures/mlflow_<metric>.png`` for each profile
chart: gradient norm against layer, at step 0 and at the closing record.  Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient

from runner.tracking.links import UI_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("profile/grad_norm_init", "profile/grad_norm_final")


def metric_page(base: str, experiment_id: str, run_ids: list[str], metric: str) -> str:
    """MLflow's metric page for ``metric`` over ``run_ids``, step on x, log y (as ``getMetricPageRoute``)."""
    query = (f"?runs={json.dumps(run_ids)}&metric={urllib.parse.quote(json.dumps(metric))}"
             f"&experiments={json.dumps([experiment_id])}&plot_metric_keys={urllib.parse.quote(json.dumps([metric]))}"
             "&plot_layout={}&x_axis=step&y_axis_scale=log&line_smoothness=1&show_point=true"
             "&deselected_curves=[]&last_linear_y_axis_range=[]")
    return f"{base}/#/metric{query}".replace(" ", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"screenshots: {url} did not answer within {seconds:.0f} s")


def screenshot(browser: str, url: str, path: Path) -> None:
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1920,1000", "--virtual-time-budget=20000", f"--screenshot={path}", url],
                   check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="tracking URI holding the sweep (default: run vanishing_depth in a temp dir)")
    parser.add_argument("--experiment", default="vanishing_depth")
    parser.add_argument("--where", default="params.activation = 'sigmoid'",
                        help="an MLflow search filter that picks the sweep's runs to draw ('' for all)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("screenshots: no chromium on PATH (Debian: apt-get install chromium)")
    store = args.store
    if store is None:
        work = Path(tempfile.mkdtemp(prefix="backprop-lab-shots-"))
        command = [str(Path(sys.executable).parent / "backprop-lab"), "-m", f"experiment={args.experiment}",
                   "hydra/launcher=joblib"]
        subprocess.run(command, cwd=work, check=True)
        store = f"sqlite:///{work}/outputs/mlflow.db"
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"screenshots: no experiment {args.experiment!r} in {store}")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.kind = 'sweep'", max_results=1,
                                   order_by=["attributes.start_time DESC"])
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.sweep_id = '{parent.data.tags['sweep_id']}' and tags.kind = 'job'"
                              + (f" and {args.where}" if args.where else ""), max_results=1000)
    run_ids = [r.info.run_id for r in sorted(runs, key=lambda r: int(r.data.tags.get("job_num", 0)))]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", store,
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=os.environ | UI_ENVIRONMENT)  # as the printed command
    try:
        wait_for(f"{base}/health")
        args.out.mkdir(parents=True, exist_ok=True)
        for metric in METRICS:
            path = args.out / f"mlflow_{metric.replace('/', '_')}.png"
            screenshot(browser, metric_page(base, experiment.experiment_id, run_ids, metric), path)
            print(f"screenshots: {path}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
