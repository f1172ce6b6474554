"""Trained models as MLflow models: `mlflow.pyfunc.load_model("models:/<experiment>-<arch>/latest")`
scores an array of raw cutouts (N, C, H, W) and returns the task's prediction columns."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd


class DeepskyModel(mlflow.pyfunc.PythonModel):
    """The same normalisation and task predictions as `deepsky predict`, behind pyfunc."""

    def load_context(self, context):
        from deepsky.models_io import load_model
        from deepsky.tasks import task_from_meta

        self.model, self.meta = load_model(context.artifacts["model"], "cpu")
        self.task = task_from_meta(self.meta)

    def predict(self, context, model_input, params=None):
        import torch

        from deepsky.data.tensors import asinh_stretch

        x = torch.from_numpy(asinh_stretch(np.asarray(model_input, dtype=np.float32)))
        with torch.inference_mode():
            columns = self.task.predict(self.model, x, torch.device("cpu"))
        return pd.DataFrame(columns)


def registered_name(experiment: str, arch: str) -> str:
    return f"{experiment}-{arch}"


def log_and_register(run_id: str, tracking_uri: str, model_path: str | Path, example: np.ndarray, name: str) -> str:
    """Log `model_path` as a pyfunc model in `run_id` and register it under `name`; returns its URI."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    from deepsky.tracking import with_retries

    wrapper = DeepskyModel()

    class _Context:
        artifacts = {"model": str(model_path)}

    wrapper.load_context(_Context())
    example = np.asarray(example[:4], dtype=np.float32)
    signature = infer_signature(example, wrapper.predict(None, example))

    def attempt():
        with using_tracking_uri(tracking_uri), mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="model", python_model=DeepskyModel(), artifacts={"model": str(model_path)},
                signature=signature, input_example=example, registered_model_name=name,
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "deepsky"],
            )
        return info.model_uri

    return with_retries(attempt, attempts=6)


@contextlib.contextmanager
def using_tracking_uri(uri: str):
    """mlflow.set_tracking_uri for a while: it also sets MLFLOW_TRACKING_URI in os.environ, which
    would redirect every later run of this process (and its children) to this store."""
    import mlflow

    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    saved_global = mlflow.tracking._tracking_service.utils._tracking_uri
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_global)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env
