"""MLflow tracking for separate-process jobs: one run per job, grouped by tags, with retries
so that many jobs writing one SQLite file at once never lose a run."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

from deepsky import config as config_module

RETRY_MARKERS = ("locked", "busy", "OperationalError", "Connection", "timed out", "already exists")


def resolve_uri(default_uri: str) -> str:
    """MLFLOW_TRACKING_URI wins; a relative sqlite path becomes absolute (jobs may chdir)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or default_uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = Path(uri[len(prefix) :]).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = prefix + str(path)
    return uri


def is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri


def with_retries(fn, *args, attempts: int = 12, base_delay: float = 0.2, **kwargs):
    """Call fn, retrying transient store errors (SQLite lock contention) with jittered backoff."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # MLflow wraps SQLAlchemy errors in its own types
            text = f"{type(exc).__name__}: {exc}"
            if attempt == attempts - 1 or not any(marker in text for marker in RETRY_MARKERS):
                raise
            time.sleep(min(10.0, base_delay * 2**attempt) * (0.5 + random.random()))


def git_commit(repo: str | Path | None = None) -> str:
    repo = repo or config_module.REPO_ROOT
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "-uno"], capture_output=True, text=True)
        return commit + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    # Opening a new SQLite store runs its migrations: concurrent first openers can collide.
    return with_retries(MlflowClient, tracking_uri=uri)


def get_or_create_experiment(client, name: str, artifact_root: str | None, uri: str) -> str:
    def attempt():
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if artifact_root and is_local_store(uri):
            location = (Path(artifact_root).resolve() / name).as_uri()
        return client.create_experiment(name, artifact_location=location)

    return with_retries(attempt)


def init_store(default_uri: str, artifact_root: str | None, experiments: list[str]) -> dict:
    """Create the store (schema migrations) and experiments once, before parallel jobs start."""
    uri = resolve_uri(default_uri)
    client = _client(uri)
    return {name: get_or_create_experiment(client, name, artifact_root, uri) for name in experiments}


class Run:
    """A tracked job. Use as a context manager; a failure marks the run FAILED, not lost."""

    def __init__(self, tracking: dict, experiment: str, run_name: str, tags: dict, run_id: str | None = None):
        self.uri = resolve_uri(tracking["uri"])
        self.client = _client(self.uri)
        self.experiment_id = get_or_create_experiment(self.client, experiment, tracking.get("artifact_root"), self.uri)
        base_tags = {"git_commit": git_commit(), "experiment": experiment}
        base_tags.update({k: str(v) for k, v in tags.items()})
        if run_id is not None:
            # Resuming after a crash: continue the same run.
            with_retries(self.client.update_run, run_id, status="RUNNING")
            self.run_id = run_id
        else:
            run = with_retries(self.client.create_run, self.experiment_id, tags=base_tags, run_name=run_name)
            self.run_id = run.info.run_id

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        flat = _flatten(params)
        batch = [Param(k, str(v)[:6000]) for k, v in flat.items()]
        for i in range(0, len(batch), 100):
            with_retries(self.client.log_batch, self.run_id, params=batch[i : i + 100])

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if _is_number(v)]
        if batch:
            with_retries(self.client.log_batch, self.run_id, metrics=batch)

    def log_missing_epochs(self, history: list[dict], key: str = "val_loss") -> None:
        """After a crash, log the epochs the checkpoint holds but the store never received."""
        logged = {m.step for m in with_retries(self.client.get_metric_history, self.run_id, key)}
        for record in history:
            if record["epoch"] not in logged:
                self.log_metrics(record, step=record["epoch"])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        with_retries(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict) -> None:
        from mlflow.entities import RunTag

        with_retries(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        status = "FINISHED" if exc_type is None else "FAILED"
        if exc is not None:
            try:
                self.set_tags({"error": f"{exc_type.__name__}: {exc}"[:4000]})
            except Exception:  # the original error matters more
                pass
        with_retries(self.client.set_terminated, self.run_id, status)
        return False


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
