# Helper functions of domains.smk (Snakemake's lint wants rules and functions apart).


def domains_experiments():
    return [e for e, exp in config["experiments"].items() if exp.get("task") == DOMAINS_TASK]


def domains_adapted_members(experiment):
    """Members trained on the source: the baseline and the adapted networks (latent-space panels)."""
    exp = config["experiments"][experiment]
    return [m for m in experiment_members(exp) if member_dataset(exp, m) == exp["dataset"]]


def domains_targets():
    targets = []
    for e in domains_experiments():
        if not runnable(e):
            continue
        stems = ["002-domain-gap-table"]
        if "transfer" in config["experiments"][e]:
            stems.append("002-transfer-learning-labels")
        if len(domains_adapted_members(e)) > 1:
            stems.append("002-domain-adaptation-latent-space")
        targets += [f"results/{e}/domain_gap.csv"] + [f"results/{e}/figures/{stem}.png" for stem in stems]
    return targets


def domains_data(experiment):
    """Card, split and images of the source and the target (the task reads both)."""
    exp = config["experiments"][experiment]
    files = {}
    for role, name in (("source", exp["dataset"]), ("target", exp["adaptation"]["target"])):
        for kind, filename in (("card", "card.json"), ("split", "split.parquet"), ("images", "images.npy")):
            files[f"{role}_{kind}"] = f"results/data/{name}/{filename}"
    return files


def domains_train_inputs(wildcards):
    return {**train_inputs(wildcards), **domains_data(wildcards.experiment)}


def domains_evaluate_inputs(wildcards):
    return {**evaluate_inputs(wildcards), **domains_data(wildcards.experiment)}


def domains_baseline(experiment):
    return config["experiments"][experiment]["adaptation"]["baseline"]


def domains_transfer_inputs(wildcards):
    e = wildcards.experiment
    return {
        "pretrained": f"results/{e}/{domains_baseline(e)}/fold{wildcards.fold}/model.pt",
        **domains_data(e),
    }


def domains_member_metrics(wildcards):
    return member_paths(wildcards.experiment, "results/{experiment}/{arch}/metrics.json", combined=False)


def domains_transfer_files(wildcards):
    e = wildcards.experiment
    if "transfer" not in config["experiments"][e]:
        return []
    return [f"results/{e}/transfer/fold{fold}/metrics.csv" for fold in experiment_folds(e)]


def domains_figure_inputs(wildcards):
    return {
        "metrics": domains_member_metrics(wildcards),
        "transfer": domains_transfer_files(wildcards),
        "card": f"results/data/{dataset_of(wildcards.experiment)}/card.json",
    }


def domains_latent_inputs(wildcards):
    e = wildcards.experiment
    fold = experiment_folds(e)[0]
    return {
        "models": [f"results/{e}/{m}/fold{fold}/model.pt" for m in domains_adapted_members(e)],
        **domains_data(e),
        "card": f"results/data/{dataset_of(e)}/card.json",
    }
