# Helper functions of photoz.smk (Snakemake's lint wants rules and functions apart).


def photoz_datasets():
    return [n for n, d in config["datasets"].items() if d["source"] == PHOTOZ_SOURCE]


def photoz_active():
    """The photoz block compares methods once its dataset is defined (a cut-down config may drop it)."""
    return "photoz_comparison" in config and config["photoz_comparison"]["dataset"] in config["datasets"]


def photoz_networks():
    from deepsky.stages.photoz import photoz_experiments

    return [e for e in photoz_experiments(config) if runnable(e)]


def photoz_predictions(wildcards=None):
    paths = [p for e in photoz_networks() for p in member_paths(e, "results/{experiment}/{arch}/predictions.parquet", combined=False)]
    return paths + [f"{PHOTOZ_DIR}/classical/{m}/predictions.parquet" for m in config["photoz_comparison"].get("classical", {})]


def photoz_dataset_file(filename):
    def path(wildcards):
        return f"results/data/{config['photoz_comparison']['dataset']}/{filename}"

    return path


def photoz_figure_name(wildcards):
    return {**PHOTOZ_FIGURES, **PHOTOZ_DATASET_FIGURES}[wildcards.stem]


def photoz_targets():
    if not photoz_active():
        return []
    targets = [f"{PHOTOZ_DIR}/comparison.csv", f"{PHOTOZ_DIR}/figures/002-photoz-methods-table.png"]
    targets += [f"{PHOTOZ_DIR}/figures/{stem}.png" for stem in PHOTOZ_FIGURES]
    return targets
