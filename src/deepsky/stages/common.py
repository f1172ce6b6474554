"""What every stage shares: logging into the rule's log file, threads, and config slices."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from deepsky.config import config_hash


@contextlib.contextmanager
def logged(log_path: str | Path | None):
    """Send this process's stdout and stderr (Python and C level) to the rule's log file."""
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            import traceback

            traceback.print_exc()
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))


def experiment_slice(config: dict, experiment: str) -> dict:
    """The part of the config that defines one experiment (its dataset included)."""
    exp = config["experiments"][experiment]
    return {"seed": config["seed"], "experiment": exp, "dataset": config["datasets"][exp["dataset"]]}


def experiment_tags(config: dict, experiment: str, card: dict, **extra) -> dict:
    exp = config["experiments"][experiment]
    return {
        "experiment": experiment,
        "dataset": exp["dataset"],
        "config_hash": config_hash(experiment_slice(config, experiment)),
        "data_sha256": card["images_sha256"],
        "workflow_run": os.environ.get("DEEPSKY_WORKFLOW_RUN", "manual"),
        **extra,
    }


def simulate_dataset(smk, writer, folder_of: str = "images", parallel: bool = True) -> tuple[str, dict]:
    """Run a dataset writer `writer(folder, name, dataset config, seed=..., [workers=...])` for the
    rule's `dataset` wildcard, seeded from the config, into the folder of output `folder_of`;
    returns (name, card). The caller prints what its card says."""
    from deepsky.train import job_seed

    name = smk.wildcards.dataset
    extra = {"workers": smk.threads} if parallel else {}
    card = writer(Path(getattr(smk.output, folder_of)).parent, name, smk.config["datasets"][name],
                  seed=job_seed(smk.config["seed"], "data", name), **extra)
    return name, card
