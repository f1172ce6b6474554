# Stage 4: one training job per (experiment, architecture, fold); `gpu=1` lets profiles route it.


rule init_tracking:
    output:
        "results/tracking/ready.json",
    log:
        "logs/tracking/init.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/init_tracking.py"


rule train:
    # Scheduling: data first, then training, so the short figure jobs fill the cores at the end.
    priority: 10
    input:
        unpack(train_inputs),
    output:
        model="results/{experiment}/{arch}/fold{fold}/model.pt",
        history="results/{experiment}/{arch}/fold{fold}/history.csv",
    log:
        "logs/{experiment}/{arch}/fold{fold}/train.log",
    benchmark:
        "results/benchmarks/{experiment}/{arch}/fold{fold}/train.tsv"
    threads: 1
    resources:
        gpu=train_gpus,
        mem_mb=6000,
        runtime=120,
    conda:
        CONDA_ENV
    script:
        "../scripts/train.py"
