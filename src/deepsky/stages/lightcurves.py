"""Stages of the light-curve experiment (one function per rule of workflow/rules/lightcurves.smk).
The sequence models themselves are trained and evaluated by the generic train/evaluate rules
through the task `sequence_classification`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepsky.data import storage
from deepsky.data.lightcurves import OBSERVATIONS, write_lightcurve_dataset
from deepsky.data.lightcurves_features import feature_table
from deepsky.data.lightcurves_tensors import load_objects, n_features
from deepsky.figures import lightcurves as figures
from deepsky.models_io import load_model
from deepsky.stages import lightcurves_analysis as analysis
from deepsky.stages.common import logged, set_threads
from deepsky.stages.evaluate import log_evaluation
from deepsky.stages.report import arch_fold, log_figure, summarize
from deepsky.tasks import make_task, task_from_meta
from deepsky.train import job_seed, pick_device


def simulate(smk) -> None:
    name = smk.wildcards.dataset
    with logged(smk.log[0]):
        started = time.perf_counter()
        card = write_lightcurve_dataset(Path(smk.output.observations).parent, name, smk.config["datasets"][name],
                                        seed=job_seed(smk.config["seed"], "data", name))
        print(f"dataset {name}: {card['n_objects']} objects, {card['cadence']['n_observations']} observations "
              f"in {time.perf_counter() - started:.1f}s; counts {card['counts']}")


def examples(smk) -> None:
    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        shown = figures.examples(pd.read_parquet(smk.input.observations), pd.read_parquet(smk.input.catalog),
                                 card["class_names"], card["bands"], smk.output[0])
        print(f"objects shown: {shown}")


def _test_set(data_dir: Path, split_path, class_names):
    """(task, index, raw, lengths, labels) of the held-out test light curves."""
    task = make_task({"name": "sequence_classification", "class_names": list(class_names)})
    index, (raw, lengths), labels = task.load_test(data_dir, split_path)
    return task, index, raw, lengths, np.asarray(labels)


def _analysis_job(smk):
    """What every analysis job of the trained models starts with: threads, device, dataset card
    and the held-out test light curves; returns (device, data_dir, card, (task, index, raw, lengths, labels))."""
    set_threads(smk.threads)
    device = pick_device(smk.config.get("device", "auto"))
    data_dir = Path(smk.input.card).parent
    card = storage.read_card(data_dir)
    return device, data_dir, card, _test_set(data_dir, smk.input.split, card["class_names"])


def baseline(smk) -> None:
    """Random forest on hand-made features, K-fold, in the multiclass prediction-table contract."""
    config, experiment = smk.config, smk.wildcards.experiment
    with logged(smk.log[0]):
        set_threads(smk.threads)
        data_dir = Path(smk.input.card).parent
        card = storage.read_card(data_dir)
        bands = card["bands"]
        catalog = pd.read_parquet(data_dir / storage.CATALOG).set_index("index", drop=False)
        split = pd.read_parquet(smk.input.split)
        started = time.perf_counter()
        index = catalog["index"].to_numpy()
        raw, lengths = load_objects(data_dir, index, bands)
        features = feature_table(analysis.unpadded(raw, lengths), index, bands)
        _, test, test_raw, test_lengths, _ = _test_set(data_dir, smk.input.split, card["class_names"])
        test_sets = analysis.truncated_features(test_raw, test_lengths, test, bands, features)
        print(f"features of {len(features)} objects and of {len(test)} test objects cut short in {time.perf_counter() - started:.1f}s")
        table, per_fold, early = analysis.baseline_folds(
            features, split, catalog["label"], list(smk.params.folds), card["class_names"],
            job_seed(config["seed"], "baseline", experiment), test_sets)
        for metrics in per_fold:
            print({k: v for k, v in metrics.items() if k != "confusion"})
        storage.save_table(smk.output.features, features)
        storage.save_table(smk.output.predictions, table)
        storage.write_json(smk.output.metrics, per_fold)
        early.to_csv(smk.output.early, index=False)
        log_evaluation(config, experiment, analysis.BASELINE, card, per_fold, len(test), smk.output.predictions,
                       smk.output.metrics)


def parameter_counts(experiment: dict, members, n_bands: int, n_classes: int) -> dict[str, int]:
    from deepsky.config import resolve_member
    from deepsky.models import count_parameters, create_model

    counts = {}
    for member in members:
        arch, kwargs, _ = resolve_member(experiment, member)
        counts[member] = count_parameters(create_model(arch, n_features(n_bands), n_classes, image_size=1, **kwargs))
    return counts


def comparison(smk) -> None:
    experiment = smk.wildcards.experiment
    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        _, summary = summarize(smk.input.metrics, smk.input.histories)
        members = [a for a in summary["architecture"] if a != analysis.BASELINE]
        counts = parameter_counts(smk.config["experiments"][experiment], members, len(card["bands"]), len(card["class_names"]))
        summary.insert(1, "n_parameters", summary["architecture"].map(counts).astype(float))
        summary.to_csv(smk.output.table, index=False, float_format="%.4f")
        print(summary.to_string())
        figures.comparison(summary, smk.output.figure)
        log_figure(smk.config, experiment, card, smk.output.figure)


def sequence_length(smk) -> None:
    """Gradients through time of the first fold's models, and accuracy against sequence length."""
    experiment = smk.wildcards.experiment
    with logged(smk.log[0]):
        device, data_dir, card, (_, index, raw, lengths, labels) = _analysis_job(smk)
        torch.manual_seed(0)
        n_obs = lengths.numpy()
        edges = analysis.length_bins(n_obs)
        bins = np.digitize(n_obs, edges[1:-1])
        profiles, ratios = [], []
        for path in smk.input.models:
            arch, _ = arch_fold(path)
            model, _ = load_model(path, device)
            norms = analysis.input_gradient_norms(model, raw, lengths, labels, device)
            profiles.append(analysis.gradient_profile(norms, arch))
            ratio = analysis.first_step_ratio(norms)
            for b in np.unique(bins):
                q25, median, q75 = np.percentile(ratio[bins == b], [25, 50, 75])
                ratios.append({"architecture": arch, "length_low": edges[b], "length_high": edges[b + 1] - 1,
                               "length_mid": float(np.median(n_obs[bins == b])), "median": median, "q25": q25, "q75": q75,
                               "n": int((bins == b).sum())})
        predictions = pd.concat([pd.read_parquet(p) for p in smk.input.predictions], ignore_index=True)
        accuracy = analysis.by_length(predictions, pd.Series(n_obs, index=index), edges)
        profile, ratios = pd.concat(profiles, ignore_index=True), pd.DataFrame(ratios)
        profile.to_csv(smk.output.profile, index=False)
        ratios.to_csv(smk.output.ratios, index=False)
        accuracy.to_csv(smk.output.accuracy, index=False)
        print(ratios.to_string())
        print(accuracy.to_string())
        figures.sequence_length(profile, ratios, accuracy, smk.output.figure)
        log_figure(smk.config, experiment, card, smk.output.figure)


def early(smk) -> None:
    """Accuracy of every fold's model on test light curves cut at fractions of their time span."""
    experiment = smk.wildcards.experiment
    with logged(smk.log[0]):
        device, data_dir, card, (_, _, raw, lengths, labels) = _analysis_job(smk)
        rows = []
        for path in smk.input.models:
            arch, fold = arch_fold(path)
            model, meta = load_model(path, device)
            rows += analysis.early_accuracy(task_from_meta(meta), model, raw, lengths, labels, device, arch, fold)
        table = pd.concat([pd.DataFrame(rows), pd.read_csv(smk.input.baseline)], ignore_index=True)
        table.to_csv(smk.output.table, index=False)
        print(table.groupby(["architecture", "fraction"])["accuracy"].mean().unstack().round(3).to_string())
        figures.early_classification(table, smk.output.figure)
        log_figure(smk.config, experiment, card, smk.output.figure)


def attention(smk) -> None:
    """The transformer's [CLS] attention over the most confidently classified test object of each class."""
    experiment = smk.wildcards.experiment
    with logged(smk.log[0]):
        device, data_dir, card, (_, index, raw, lengths, labels) = _analysis_job(smk)
        class_names = card["class_names"]
        model, _ = load_model(smk.input.model, device)
        probabilities, weights = analysis.cls_attention(model, raw, lengths, device)
        observations = pd.read_parquet(data_dir / OBSERVATIONS).sort_values(["object", "time"], kind="stable")
        catalog = pd.read_parquet(data_dir / storage.CATALOG).set_index("index", drop=False)
        examples, rows = [], []
        for k, name in enumerate(class_names):
            members = np.flatnonzero(labels == k)
            if not len(members):
                continue
            best = members[np.argmax(probabilities[members, k])]
            obs = observations[observations["object"] == index[best]].reset_index(drop=True)
            row = catalog.loc[index[best]]
            examples.append({"observations": obs, "attention": weights[best], "class_name": name,
                             "probability": float(probabilities[best, k]), "title": f"object {index[best]}: {figures.describe(row)}"})
            rows.append(obs.assign(class_name=name, attention=weights[best]))
        pd.concat(rows, ignore_index=True).to_csv(smk.output.table, index=False)
        figures.attention_maps(examples, card["bands"], smk.output.figure)
        log_figure(smk.config, experiment, card, smk.output.figure)
