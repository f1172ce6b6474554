import multiprocessing as mp

import pytest

from deepsky.tracking import Run, init_store, resolve_uri, with_retries


def _job(args):
    uri, artifact_root, k = args
    with Run({"uri": uri, "artifact_root": artifact_root}, "parallel", f"job{k}", {"fold": k}) as run:
        run.log_params({"k": k, "nested": {"a": 1}})
        for step in range(15):
            run.log_metrics({"loss": 1.0 / (step + 1), "k": k}, step=step)
    return run.run_id


def test_parallel_jobs_lose_no_run(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    init_store(uri, str(tmp_path / "artifacts"), ["parallel"])
    with mp.get_context("spawn").Pool(8) as pool:
        ids = pool.map(_job, [(uri, str(tmp_path / "artifacts"), k) for k in range(8)])
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("parallel")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted(ids)
    for run in runs:
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 15
        assert run.data.params["nested.a"] == "1"


def test_failed_job_is_kept_as_failed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(RuntimeError):
        with Run({"uri": uri}, "crash", "job", {}) as run:
            raise RuntimeError("boom")
    from mlflow.tracking import MlflowClient

    stored = MlflowClient(uri).get_run(run.run_id)
    assert stored.info.status == "FAILED"
    assert "boom" in stored.data.tags["error"]


def test_retries_lock_errors_only():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert with_retries(flaky, base_delay=0.001) == "ok" and len(calls) == 3
    with pytest.raises(KeyError):
        with_retries(lambda: {}["x"], base_delay=0.001)


def test_environment_overrides_config(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_uri("sqlite:///results/mlflow.db") == "http://127.0.0.1:5999"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert resolve_uri("sqlite:///results/mlflow.db") == f"sqlite:///{tmp_path}/results/mlflow.db"
