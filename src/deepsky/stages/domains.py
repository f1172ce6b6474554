"""Stages of the domain-shift experiments (task domain_adaptation, lecture 002): the few-labels
transfer sweep of one fold, the domain-gap table and the latent space of both domains.

The members themselves (no adaptation, oracle, randomised simulation, MMD, DANN) are ordinary
`train` / `evaluate` jobs: the task scores them on the test sets of both domains.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepsky.config import member_dataset
from deepsky.data import storage
from deepsky.data.split import fold_indices
from deepsky.models import create_model
from deepsky.models.domains_nets import Frozen, split_backbone_head
from deepsky.models_io import load_model
from deepsky.stages.common import experiment_tags, logged, set_threads
from deepsky.tasks import task_from_meta
from deepsky.tasks.domains import ROLES, feature_mmd
from deepsky.tracking import Run
from deepsky.train import fit, job_seed, pick_device

METHODS = ("frozen", "finetune", "scratch")
METHOD_LABELS = {"frozen": "frozen features + new head", "finetune": "fine-tuned", "scratch": "from scratch"}


# ---------------------------------------------------------------- transfer with few labels
def balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """Positions of the labelled pool, classes interleaved after a shuffle within each class:
    every prefix is (nearly) class-balanced and the first N are inside the first N' > N."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = []
    for k in range(max(len(p) for p in per_class)):
        order += [int(per_class[c][k]) for c in rng.permutation(len(per_class)) if k < len(per_class[c])]
    return np.array(order)


def label_counts(labels_config: list, pool_size: int) -> list[int]:
    return sorted({pool_size if n == "all" else min(int(n), pool_size) for n in labels_config})


def transfer_model(method: str, pretrained_path, device, seed: int) -> torch.nn.Module:
    """frozen: the source feature extractor, fixed, with a new head; finetune: the source model;
    scratch: the same architecture, randomly initialised."""
    model, meta = load_model(pretrained_path, device)
    torch.manual_seed(seed)
    if method == "finetune":
        return model
    if method == "frozen":
        features, head = split_backbone_head(model)
        return torch.nn.Sequential(Frozen(features), torch.nn.Linear(head.in_features, head.out_features)).to(device)
    if method == "scratch":
        return create_model(meta["architecture"], meta["in_channels"], meta["num_outputs"], image_size=meta["image_size"],
                            **meta.get("model_kwargs", {})).to(device)
    raise ValueError(f"unknown transfer method {method!r} (known: {', '.join(METHODS)})")


def transfer_settings(exp: dict, n: int, method: str) -> dict:
    """A fixed budget of steps whatever N: the N labels are all there is, so no early stopping.
    A new linear head on fixed features takes larger steps (nothing else moves): 10x by default."""
    spec, training = exp["transfer"], exp["training"]
    batch = int(training["batch_size"])
    epochs = max(1, math.ceil(int(spec.get("steps", 60)) / math.ceil(n / batch)))
    rate = float(spec.get("learning_rate", training["learning_rate"]))
    if method == "frozen":
        rate = float(spec.get("head_learning_rate", 10 * rate))
    return {"epochs": epochs, "batch_size": batch, "patience": epochs, "learning_rate": rate,
            "weight_decay": float(training.get("weight_decay", 0.0)), "mixed_precision": True,
            # Frozen batch-norm statistics must stay the source's: no recalibration.
            "precise_bn": method != "frozen"}


def transfer_fold(config: dict, experiment: str, fold: int, pretrained_path, data_root, out_metrics, out_predictions) -> pd.DataFrame:
    exp = config["experiments"][experiment]
    spec, target = exp["transfer"], exp["adaptation"]["target"]
    data_root, out_dir = Path(data_root), Path(out_metrics).parent
    device = pick_device(config.get("device", "auto"))
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    _, meta = load_model(pretrained_path, "cpu")
    task = task_from_meta(meta)  # domain_adaptation: scores both domains
    test_index, x_test, truth = task.load_test(data_root / exp["dataset"], None)

    split = pd.read_parquet(data_root / target / "split.parquet")
    pool = np.sort(fold_indices(split, fold)["train"])
    catalog = pd.read_parquet(data_root / target / storage.CATALOG).set_index("index", drop=False)
    labels = task.targets(catalog.loc[pool])
    order = pool[balanced_order(np.asarray(labels), job_seed(config["seed"], "transfer", experiment, fold))]
    images = storage.load_images(data_root / target / storage.IMAGES)

    rows, tables = [], []
    for n in label_counts(spec["labels"], len(pool)):
        chosen = np.sort(order[:n])
        train = None
        if n:
            from deepsky.data.tensors import asinh_stretch

            train = (torch.from_numpy(asinh_stretch(images[chosen])), task.encode(task.targets(catalog.loc[chosen])))
        for method in spec.get("methods", list(METHODS)):
            if n == 0 and method == "scratch":
                continue  # nothing to learn from
            seed = job_seed(config["seed"], "transfer", experiment, fold, method, n)
            # No labels: every method is the source model as it is.
            model = transfer_model(method, pretrained_path, device, seed) if n else load_model(pretrained_path, device)[0]
            settings = transfer_settings(exp, n, method) if n else {"epochs": 0}
            if n:
                checkpoint = out_dir / "checkpoints" / f"{method}_n{n}.pt"
                _, best = fit(model, train, train, settings, device, seed, checkpoint, task.inner)
                model.load_state_dict(best)
                checkpoint.unlink(missing_ok=True)
            name = f"{method}_n{n}"
            table = task.prediction_table(test_index, truth, task.predict(model, x_test, device), fold, name)
            table["method"], table["n_labels"] = method, n
            tables.append(table)
            measured = task.metrics(table)
            rows.append({"fold": fold, "method": method, "n_labels": n, "epochs": settings["epochs"],
                         **{k: v for k, v in measured.items() if not isinstance(v, list)}})
            print(json.dumps({"method": method, "n_labels": n, f"{task.metric}_target": measured[f"{task.metric}_target"]}), flush=True)
    metrics = pd.DataFrame(rows)
    metrics.to_csv(out_metrics, index=False)
    storage.save_table(out_predictions, pd.concat(tables, ignore_index=True))
    _log_transfer(config, experiment, fold, data_root, metrics, task.metric, spec, out_metrics)
    return metrics


def _log_transfer(config, experiment, fold, data_root, metrics, metric, spec, out_metrics) -> None:
    card = storage.read_card(data_root / config["experiments"][experiment]["dataset"])
    tags = experiment_tags(config, experiment, card, stage="transfer", fold=fold)
    with Run(config["tracking"], experiment, f"transfer/{experiment}/fold{fold}", tags) as run:
        run.log_params({"fold": fold, "transfer": spec, "baseline": config["experiments"][experiment]["adaptation"]["baseline"]})
        for r in metrics.itertuples():
            run.log_metrics({f"{r.method}_{metric}_target": getattr(r, f"{metric}_target"),
                             f"{r.method}_{metric}_source": getattr(r, f"{metric}_source")}, step=int(r.n_labels))
        run.log_artifact(out_metrics)


# ---------------------------------------------------------------- the domain-gap table
def target_data(exp: dict, member: str, adaptation: str) -> str:
    if member_dataset(exp, member) == exp["adaptation"]["target"]:
        return "all target labels"
    return "unlabelled target" if adaptation != "none" else "none"


def member_label(exp: dict, member: str) -> str:
    return exp.get("variants", {}).get(member, {}).get("label", member)


def gap_table(config: dict, experiment: str, metric_files, transfer_files) -> pd.DataFrame:
    """Per remedy: the metric on the source and target test sets (mean, std over folds), the gap left
    to the baseline's in-domain score and the fraction of the baseline's source->target drop recovered."""
    exp = config["experiments"][experiment]
    rows = []
    for path in metric_files:
        member = Path(path).parent.name
        per_fold = pd.DataFrame(json.loads(Path(path).read_text()))
        variant = exp.get("variants", {}).get(member, {})
        adaptation = variant.get("model_kwargs", {}).get("adaptation", "none") if variant.get("architecture") == "domain_adaptive" else "none"
        rows.append({"remedy": member_label(exp, member), "member": member, "trained_on": member_dataset(exp, member),
                     "target_data": target_data(exp, member, adaptation), "n_labels": None, "per_fold": per_fold})
    if transfer_files:
        sweep = pd.concat([pd.read_csv(path) for path in transfer_files], ignore_index=True)
        for (method, n), part in sweep[sweep["n_labels"] > 0].groupby(["method", "n_labels"], sort=False):
            rows.append({"remedy": f"{METHOD_LABELS[method]}, N={n}", "member": f"{method}_n{n}",
                         "trained_on": f"{exp['dataset']} + {n} of {exp['adaptation']['target']}" if method != "scratch" else exp["adaptation"]["target"],
                         "target_data": f"{n} target labels", "n_labels": int(n), "per_fold": part})
    baseline = next(r for r in rows if r["member"] == exp["adaptation"]["baseline"])
    metric = _metric_name(baseline["per_fold"])
    in_domain = baseline["per_fold"][f"{metric}_source"].mean()
    shifted = baseline["per_fold"][f"{metric}_target"].mean()
    out = []
    for r in rows:
        f = r.pop("per_fold")
        target_mean = f[f"{metric}_target"].mean()
        out.append({**r, "metric": metric, "n_folds": len(f),
                    "source_mean": f[f"{metric}_source"].mean(), "source_std": f[f"{metric}_source"].std(),
                    "target_mean": target_mean, "target_std": f[f"{metric}_target"].std(),
                    "drop": in_domain - target_mean,
                    "recovered": (target_mean - shifted) / (in_domain - shifted) if in_domain != shifted else float("nan")})
    return pd.DataFrame(out)


def _metric_name(per_fold: pd.DataFrame) -> str:
    return "auroc" if "auroc_source" in per_fold else "accuracy"


def gap_main(smk) -> None:
    from deepsky.figures.domains import gap_table_figure
    from deepsky.stages.report import log_figure

    with logged(smk.log[0]):
        e = smk.wildcards.experiment
        table = gap_table(smk.config, e, list(smk.input.metrics), list(smk.input.get("transfer", [])))
        table.to_csv(smk.output.table, index=False, float_format="%.4f")
        print(table.to_string())
        exp = smk.config["experiments"][e]
        gap_table_figure(table, exp["dataset"], exp["adaptation"]["target"], smk.output.figure)
        log_figure(smk.config, e, storage.read_card(Path(smk.input.card).parent), smk.output.figure)


def transfer_main(smk) -> None:
    with logged(smk.log[0]):
        set_threads(smk.threads)
        transfer_fold(smk.config, smk.wildcards.experiment, int(smk.wildcards.fold), smk.input.pretrained,
                      Path(smk.input.target_card).parent.parent, smk.output.metrics, smk.output.predictions)


def transfer_figure_main(smk) -> None:
    from deepsky.figures.domains import transfer_curves
    from deepsky.stages.report import log_figure

    with logged(smk.log[0]):
        e = smk.wildcards.experiment
        exp = smk.config["experiments"][e]
        sweep = pd.concat([pd.read_csv(p) for p in smk.input.transfer], ignore_index=True)
        references = {}
        for path in smk.input.metrics:
            member = Path(path).parent.name
            references[member] = pd.DataFrame(json.loads(Path(path).read_text()))
        transfer_curves(sweep, references, exp["adaptation"], {m: member_label(exp, m) for m in references},
                        exp["dataset"], exp["adaptation"]["target"], smk.output[0])
        log_figure(smk.config, e, storage.read_card(Path(smk.input.card).parent), smk.output[0])


# ---------------------------------------------------------------- latent space
def latent_features(config: dict, experiment: str, model_paths: dict, data_root) -> dict:
    """{panel: (features (N, d), table of label/domain/role)}; the first panel is the baseline's
    architecture before training (seeded), as the lecture's "before training" picture."""
    exp = config["experiments"][experiment]
    device = pick_device(config.get("device", "auto"))
    _, base_meta = load_model(model_paths[exp["adaptation"]["baseline"]], device)
    task = task_from_meta(base_meta)
    _, x, truth = task.load_test(Path(data_root) / exp["dataset"], None)
    torch.manual_seed(job_seed(config["seed"], "latent", experiment))
    untrained = create_model(base_meta["architecture"], base_meta["in_channels"], base_meta["num_outputs"],
                             image_size=base_meta["image_size"], **base_meta.get("model_kwargs", {})).to(device)
    panels = {"before training": task.features(untrained, x, device)}
    for member, path in model_paths.items():
        model, _ = load_model(path, device)
        panels[member_label(exp, member)] = task.features(model, x, device)
    return {name: (f.numpy(), truth) for name, f in panels.items()}


def latent_main(smk) -> None:
    from deepsky.figures.domains import latent_space
    from deepsky.stages.report import log_figure

    with logged(smk.log[0]):
        set_threads(smk.threads)
        e = smk.wildcards.experiment
        exp = smk.config["experiments"][e]
        paths = {Path(p).parent.parent.name: p for p in smk.input.models}
        panels = latent_features(smk.config, e, paths, Path(smk.input.card).parent.parent)
        mmd = {name: float(feature_mmd(*(torch.from_numpy(f[truth["role"].to_numpy() == r]) for r in ROLES)))
               for name, (f, truth) in panels.items()}
        latent_space(panels, mmd, exp["dataset"], exp["adaptation"]["target"], job_seed(smk.config["seed"], "tsne", e), smk.output[0])
        log_figure(smk.config, e, storage.read_card(Path(smk.input.card).parent), smk.output[0])
