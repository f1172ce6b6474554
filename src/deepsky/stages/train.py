"""One training job: (experiment, architecture, fold) -> best model, history, MLflow run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import torch

from deepsky import distributed
from deepsky.config import config_hash, resolve_member, task_spec
from deepsky.data import storage
from deepsky.models import count_parameters, create_model
from deepsky.stages.common import experiment_slice, experiment_tags, logged, set_threads
from deepsky.tasks import make_task
from deepsky.tracking import Run
from deepsky.train import fit, job_seed, pick_device, save_atomic


def train_fold(
    config: dict, experiment: str, arch: str, fold: int, data_dir, split_path, augmented_dir, out_model, out_history
) -> dict:
    exp = config["experiments"][experiment]
    architecture, kwargs, settings = resolve_member(exp, arch)
    card = storage.read_card(data_dir)
    class_names = card["class_names"]
    task = make_task(task_spec(exp, config["datasets"], class_names))
    task.check_training(settings)
    num_outputs = task.head_size
    seed = job_seed(config["seed"], "train", experiment, arch, fold)
    device = distributed.init_from_env(pick_device(config.get("device", "auto")))
    rank, _ = distributed.rank_world()
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)

    data = task.load_fold(data_dir, split_path, fold, augmented_dir if settings.get("augment", False) else None)
    dims = task.input_dims(data["train"])
    model = create_model(architecture, dims["in_channels"], num_outputs, image_size=dims["image_size"], **kwargs).to(device)
    checkpoint = Path(out_model).parent / "checkpoints" / "last.pt"
    previous_run, previous_history = None, []
    # A checkpoint left by a crashed job of another config (architecture, settings, data) is stale.
    job_hash = config_hash({**experiment_slice(config, experiment), "member": arch, "fold": fold,
                            "data_sha256": card["images_sha256"]})
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state.get("config_hash") != job_hash:
            print(f"discarding {checkpoint}: written by a job with another config", flush=True)
            if rank == 0:
                checkpoint.unlink()
            distributed.barrier()
        else:
            previous_run, previous_history = state.get("run_id"), state["history"]

    tags = experiment_tags(config, experiment, card, architecture=architecture, member=arch, fold=fold, stage="train")
    run_name = f"train/{experiment}/{arch}/fold{fold}"
    # Under torchrun only rank 0 tracks and writes; the other ranks only train.
    tracked = Run(config["tracking"], experiment, run_name, tags, run_id=previous_run) if rank == 0 else UntrackedRun()
    with tracked as run:
        if previous_run is None:
            run.log_params(
                {
                    "architecture": architecture,
                    "member": arch,
                    "task": task.name,
                    "model_kwargs": kwargs,
                    "training": settings,
                    "fold": fold,
                    "seed": seed,
                    "device": device.type,
                    "n_parameters": count_parameters(model),
                    "n_train": task.num_examples(data["train"]),
                    "n_val": task.num_examples(data["val"]),
                    "config": experiment_slice(config, experiment),
                }
            )
        else:
            run.log_missing_epochs(previous_history)
        history, best_state = fit(
            model, data["train"], data["val"], settings, device, seed, checkpoint, task,
            on_epoch=lambda record: run.log_metrics(record, step=record["epoch"]), run_id=run.run_id,
            config_hash=job_hash,
        )
        meta = {
            "architecture": architecture,
            "member": arch,
            "model_kwargs": kwargs,
            "in_channels": dims["in_channels"],
            "image_size": dims["image_size"],
            "num_outputs": int(num_outputs),
            "class_names": class_names,
            "task": task.spec,
            "bands": card["bands"],
            "normalization": "asinh",
            "train_run_id": run.run_id,
            "data_sha256": card["images_sha256"],
        }
        if rank > 0:
            return meta
        save_atomic({"state_dict": best_state, "meta": meta}, Path(out_model))
        pd.DataFrame(history).to_csv(out_history, index=False)
        best = min(history, key=lambda r: r["val_loss"])
        run.log_metrics({"best_val_loss": best["val_loss"], "best_epoch": best["epoch"], "epochs_run": len(history)})
        run.log_artifact(out_history)
    # The resume checkpoint (weights, best state, optimiser moments) exists for crashes only.
    checkpoint.unlink(missing_ok=True)
    return meta


class UntrackedRun:
    """What ranks other than 0 use instead of an MLflow run."""

    run_id = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def main(smk) -> None:
    with logged(smk.log[0]):
        set_threads(smk.threads)
        w = smk.wildcards
        arguments = [
            smk.config, w.experiment, w.arch, int(w.fold), str(Path(smk.input.card).parent), smk.input.split,
            str(Path(smk.input.augmented).parent) if smk.input.get("augmented") else None,
            smk.output.model, smk.output.history,
        ]
        processes = int(smk.resources.get("gpu", 1) or 1)
        if processes <= 1:
            train_fold(*arguments)
            return
        job = Path(smk.log[0]).with_suffix(".ddp.json")
        job.write_text(json.dumps(arguments))
        code = distributed.launch("deepsky.stages.train", str(job), processes)
        if code != 0:
            raise RuntimeError(f"distributed training ({processes} processes) failed with exit code {code}")


def distributed_main(job_file: str) -> None:
    """Entry point of each torchrun rank."""
    set_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    train_fold(*json.loads(Path(job_file).read_text()))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def init_tracking(smk) -> None:
    """Create the MLflow store and experiments before parallel jobs race to do it."""
    from deepsky.data.storage import write_json
    from deepsky.tracking import init_store, resolve_uri

    with logged(smk.log[0]):
        tracking = smk.config["tracking"]
        ids = init_store(tracking["uri"], tracking.get("artifact_root"), list(smk.config["experiments"]))
        write_json(smk.output[0], {"uri": resolve_uri(tracking["uri"]), "experiments": ids})
        print(f"MLflow store ready at {resolve_uri(tracking['uri'])}: {ids}")


if __name__ == "__main__":
    distributed_main(sys.argv[1])
