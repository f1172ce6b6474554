"""Stages of the CMB GAN experiment (lecture 003, Tutorial 3): simulate the patches, evaluate every
fold's generator against the held-out patches, draw the figures. Training is the shared `train` rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepsky.data import storage
from deepsky.stages.common import experiment_tags, logged, set_threads, simulate_dataset
from deepsky.tracking import Run, resolve_uri, with_retries
from deepsky.train import job_seed, pick_device


def simulate(smk) -> None:
    from deepsky.data.cmb import write_cmb_dataset

    with logged(smk.log[0]):
        name, card = simulate_dataset(smk, write_cmb_dataset, parallel=False)
        theory = card["provenance"]["theory"]
        print(f"dataset {name}: {card['n_images']} patches {card['image_shape']}, resolved ell "
              f"{theory['ell_min_resolved']:.0f}-{theory['ell_max_resolved']:.0f}, sha256 {card['images_sha256']}")


def theory_expectation(card: dict, estimator, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin average of C_ell B_ell^2 + N, what the estimator returns on average for it) per bin."""
    from deepsky.data.cmb import card_settings
    from deepsky.data.cmb_spectrum import expected_binned

    _, theory = card_settings(card)
    cl = np.asarray(theory["cl_tt"]) * np.asarray(theory["beam_window"]) ** 2 + theory["noise_cl"]
    ell = np.arange(len(cl))
    expected = expected_binned(estimator, ell, cl, np.random.default_rng(seed))
    return estimator.binned_theory(ell, cl), expected


def log_samples_to_training_run(tracking: dict, run_id: str, samples_dir: Path) -> int:
    """The per-epoch sample grids (written by the task during training) as artifacts of its run."""
    from mlflow.tracking import MlflowClient

    if not run_id or not samples_dir.is_dir():
        return 0
    client = with_retries(MlflowClient, tracking_uri=resolve_uri(tracking["uri"]))
    grids = sorted(samples_dir.glob("epoch_*.png"))
    for png in grids:
        with_retries(client.log_artifact, run_id, str(png), "samples")
    return len(grids)


def evaluate_gan(config, experiment, arch, model_paths, data_dir, split_path, out: dict) -> list[dict]:
    """Every fold's G against the held-out test patches: generated.npy, real.npy, card.json,
    metrics.json (a list, one dict per fold), spectra.parquet and minkowski.parquet (a `fold` column)."""
    from deepsky.data.cmb import card_settings
    from deepsky.data.cmb_compare import compare, estimator_for, resolved_bins
    from deepsky.models_io import load_model
    from deepsky.stages.evaluate import fold_of
    from deepsky.tasks import task_from_meta

    device = pick_device(config.get("device", "auto"))
    card = storage.read_card(data_dir)
    simulation, theory = card_settings(card)
    paths = sorted(model_paths, key=fold_of)
    spectra, minkowski, per_fold, generated_all = [], [], [], []
    real = None
    for path in paths:
        fold = fold_of(path)
        model, meta = load_model(path, device)
        task = task_from_meta(meta)
        if real is None:
            test_index, x, _ = task.load_test(data_dir, split_path)
            real = task.decode(x)
            n_generated = int(task.spec.get("n_generated") or len(real))
            estimator = estimator_for(real.shape[-1], simulation["pixel_arcmin"], task.spec["bin_width"], task.spec["apodisation"])
            resolved = resolved_bins(estimator, (theory["ell_min_resolved"], theory["ell_max_resolved"]))
            theory_binned, theory_expected = theory_expectation(card, estimator, job_seed(config["seed"], "theory", experiment))
        generated = task.generate(model, n_generated, device, job_seed(config["seed"], "generate", experiment, arch, fold))
        metrics, table, mf = compare(generated, real, estimator, resolved, seed=fold)
        table["cl_theory_binned"], table["cl_theory_expected"] = theory_binned, theory_expected
        real_over_theory = (table["cl_real_mean"] / table["cl_theory_expected"])[table["resolved"]]
        history = pd.read_csv(Path(path).with_name("history.csv"))
        metrics.update({
            "fold": fold, "architecture": arch, "n_generated": len(generated), "n_real": len(real),
            "real_over_theory_worst": float((real_over_theory - 1).abs().max()),
            "epochs_run": len(history), "best_epoch": int(history.loc[history["val_loss"].idxmin(), "epoch"]),
            "train_seconds": float(history["epoch_seconds"].sum()), "train_run_id": meta.get("train_run_id", ""),
        })
        per_fold.append(metrics)
        spectra.append(table.assign(fold=fold, architecture=arch))
        minkowski.append(mf.assign(fold=fold, architecture=arch))
        generated_all.append(generated)
        print(json.dumps({k: v for k, v in metrics.items() if k != "train_run_id"}))

    np.save(out["generated"], np.concatenate(generated_all).astype(np.float32))
    np.save(out["real"], real.astype(np.float32))
    storage.save_table(out["spectra"], pd.concat(spectra, ignore_index=True))
    storage.save_table(out["minkowski"], pd.concat(minkowski, ignore_index=True))
    storage.write_json(out["metrics"], per_fold)
    storage.write_json(out["card"], {
        "description": "generated (DCGAN) and held-out real CMB temperature patches, as scored in metrics.json",
        "units": "muK", "pixel_arcmin": float(simulation["pixel_arcmin"]), "patch_pixels": int(real.shape[-1]),
        "generated": {"file": "generated.npy", "folds": [m["fold"] for m in per_fold], "n_per_fold": int(n_generated),
                      "order": "fold by fold, in the order of `folds`"},
        "real": {"file": "real.npy", "split": "test", "catalog_index": [int(i) for i in test_index]},
        "dataset": card["name"], "dataset_sha256": card["images_sha256"], "beam_fwhm_arcmin": simulation["beam_fwhm_arcmin"],
        "noise_uk_arcmin": simulation["noise_uk_arcmin"], "ell_resolved": [theory["ell_min_resolved"], theory["ell_max_resolved"]],
        "spectrum_estimator": {"bin_width_fundamentals": task.spec["bin_width"], "tukey_alpha": task.spec["apodisation"]},
    })
    log_evaluation(config, experiment, arch, card, per_fold, paths, out)
    return per_fold


def log_evaluation(config, experiment, arch, card, per_fold, model_paths, out) -> None:
    numeric = [k for k, v in per_fold[0].items() if isinstance(v, float)]
    tags = experiment_tags(config, experiment, card, architecture=arch, stage="evaluate",
                           folds=",".join(str(m["fold"]) for m in per_fold))
    with Run(config["tracking"], experiment, f"evaluate/{experiment}/{arch}", tags) as run:
        run.log_params({"architecture": arch, "folds": [m["fold"] for m in per_fold], "n_generated": per_fold[0]["n_generated"],
                        "n_real": per_fold[0]["n_real"], "train_run_ids": [m["train_run_id"] for m in per_fold]})
        for metrics in per_fold:
            run.log_metrics({f"test_{k}": metrics[k] for k in numeric}, step=metrics["fold"])
        for key in ("metrics", "spectra", "minkowski", "card"):
            run.log_artifact(out[key])
    for metrics, path in zip(per_fold, model_paths):
        n = log_samples_to_training_run(config["tracking"], metrics["train_run_id"], Path(path).parent / "checkpoints" / "samples")
        print(f"fold {metrics['fold']}: {n} sample grids logged to training run {metrics['train_run_id']}")


def evaluate_main(smk) -> None:
    with logged(smk.log[0]):
        set_threads(smk.threads)
        torch.manual_seed(0)
        evaluate_gan(smk.config, smk.wildcards.experiment, smk.wildcards.arch, list(smk.input.models),
                     Path(smk.input.card).parent, smk.input.split, dict(smk.output.items()))


def figure_main(smk) -> None:
    """One figure of an experiment (params.figure names the function of deepsky.figures.cmb)."""
    from deepsky.figures import cmb as figures
    from deepsky.stages.report import log_figure

    with logged(smk.log[0]):
        experiment = smk.wildcards.experiment
        card = storage.read_card(Path(smk.input.card).parent)
        getattr(figures, smk.params.figure)(dict(smk.input.items()), card, smk.output[0])
        log_figure(smk.config, experiment, card, smk.output[0])


def dataset_figure_main(smk) -> None:
    from deepsky.figures import cmb as figures

    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        figures.dataset_overview(storage.load_images(smk.input.images), pd.read_parquet(smk.input.catalog), card, smk.output[0])
