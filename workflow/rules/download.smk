# Real datasets: a checksummed, resumable download, then the archive read into the project's
# format. `snakemake download_all` fetches every configured source (needs network).


rule download_archive:
    output:
        "results/downloads/{dataset}/{filename}",
    log:
        "logs/downloads/{dataset}/{filename}.log",
    params:
        # Sources that publish no checksum get theirs recorded here on first download.
        lock_file="config/datasets.lock.json",
    wildcard_constraints:
        dataset=wildcard_choice(real_datasets()),
    resources:
        downloads=1,
    conda:
        CONDA_ENV
    script:
        "../scripts/real_data_fetch.py"


rule prepare_real_dataset:
    priority: 20
    input:
        archive=real_archive,
    output:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/prepare.log",
    benchmark:
        "results/benchmarks/data/{dataset}/prepare.tsv"
    wildcard_constraints:
        dataset=wildcard_choice(real_datasets()),
    resources:
        mem_mb=16000,
    conda:
        CONDA_ENV
    script:
        "../scripts/real_data_prepare.py"


rule download_all:
    input:
        [real_archive_path(name) for name in real_datasets() if config["datasets"][name].get("download")],
