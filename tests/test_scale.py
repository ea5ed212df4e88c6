"""A thousand-job sweep end to end, on the embedded store (slow: about 7 minutes here; the same sweep
against a PostgreSQL-backed server is in ``tests/test_integration.py``, its costs in
``benchmarks/thousand_jobs.py`` and docs/scale.md)."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import assert_every_point_recorded, run_cli, store_uri, thousand_job_grid


@pytest.mark.slow
def test_a_thousand_job_sweep_records_every_point_and_attaches_its_report(tmp_path: Path):
    done = run_cli(tmp_path, "-m", *thousand_job_grid(epochs=100, log_every=20), "tracking.experiment=thousand",
                   timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1000 job(s) checked" in done.stdout and "1000 jobs in" in done.stdout
    client = MlflowClient(store_uri(tmp_path))
    assert_every_point_recorded(client, "thousand", tmp_path / "histories", 1000,
                                ("train/loss", "grad_norm/grad_norm_l01", "log10_grad_norm/log10_grad_norm_l01"))
    assert (tmp_path / "sweep" / "report" / "report.html").is_file()
    (parent,) = client.search_runs([client.get_experiment_by_name("thousand").experiment_id], "tags.kind = 'sweep'")
    attached = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/grad_profile.png", "report/summary.csv"} <= attached
