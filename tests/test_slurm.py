"""profiles/slurm on a real one-node SLURM (.ci/slurm/start.sh): it submits, runs and recovers.

Runs when SLURM is installed (.ci/slurm/install.sh) and this user can start it (root) or it runs
already; skipped otherwise, a failure when DEEPSKY_REQUIRE_SLURM=1 (set by .ci/run)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, tiny_config

REQUIRED = os.environ.get("DEEPSKY_REQUIRE_SLURM") == "1"
START = ROOT / ".ci/slurm/start.sh"
CLUSTER, ACCOUNT = "deepsky-ci", "deepsky"  # as .ci/slurm/start.sh sets them up
ARCH, EPOCHS = "simple_cnn", 10
# Five stages of SLURM jobs (each starts Snakemake and Python anew): data, split, train, evaluate, summary.
TARGETS = ["results/lens_finding/summary.csv"]
GPU_RULES = {"train", "evaluate"}
RULES = {"init_tracking", "simulate_dataset", "split_dataset", "train", "evaluate", "summarize"}


def unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (DEEPSKY_REQUIRE_SLURM=1)")
    pytest.skip(reason)


def slurm_cluster_name():
    """The name of the cluster the SLURM clients talk to, None if no controller answers."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"^ClusterName\s*=\s*(\S+)", out.stdout, re.M)
    return match.group(1) if out.returncode == 0 and match else None


@pytest.fixture(scope="module")
def slurm():
    """The throwaway cluster of .ci/slurm/start.sh, started if needed; never a site's real one."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')")
    missing = [tool for tool in ("slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "munged") if not shutil.which(tool)]
    if missing:
        unavailable(f"SLURM is not installed (missing {', '.join(missing)}; .ci/slurm/install.sh installs it)")
    name = slurm_cluster_name()
    if name not in (None, CLUSTER):
        unavailable(f"SLURM here is the cluster {name!r}; this test only submits to {CLUSTER!r} of .ci/slurm/start.sh")
    if os.geteuid() != 0 and name is None:
        unavailable("starting the test SLURM (.ci/slurm/start.sh) needs root")
    started = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, f"{START} failed:\n{started.stdout[-2000:]}\n{started.stderr[-3000:]}"
    return CLUSTER


def slurm_config() -> dict:
    """Tiny lens finding: one architecture, two folds, 10 epochs of about a second each, so that a
    training job can be cancelled after its first checkpoint."""
    config = tiny_config(("lens_finding",))
    config.pop("inside", None)
    config["datasets"]["lenses"].update(n_per_class=64, export_fits=False)
    experiment = config["experiments"]["lens_finding"]
    experiment["architectures"] = [ARCH]
    experiment["training"].update(epochs=EPOCHS, patience=EPOCHS, augment=False, batch_size=16)
    return config


def ci_profile(path: Path) -> Path:
    """profiles/slurm with only what a site changes: the account, and memory and threads that fit
    one small node. Partitions, GPU requests, retries come from the profile as shipped."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/profile.yaml").read_text())
    profile["default-resources"].update(slurm_account=ACCOUNT, mem_mb=1000)
    for resources in profile["set-resources"].values():
        if "mem_mb" in resources:
            resources["mem_mb"] = 1000
    profile["set-threads"] = {rule: 1 for rule in profile["set-threads"]}
    # The plugin waits 40 s before its first status query (10 s more each time nothing finished).
    profile["slurm-init-seconds-before-status-checks"] = 2
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(profile))
    return path



def queued_jobs(workdir: Path) -> dict:
    """SLURM job id -> comment ("rule_<rule>_wildcards_<values>") of the jobs running in workdir."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%Z|%k"], capture_output=True, text=True).stdout
    rows = [line.split("|", 2) for line in out.splitlines() if line.count("|") >= 2]
    return {job: comment for job, work, comment in rows if Path(work) == workdir}


def cancel_after_first_checkpoint(workdir: Path, process, timeout: float = 300) -> tuple[str, Path]:
    """scancel fold 0's training job once its first epoch checkpoint is written."""
    fold_dir = workdir / f"results/lens_finding/{ARCH}/fold0"
    checkpoint = fold_dir / "checkpoints/last.pt"
    deadline = time.time() + timeout
    while not checkpoint.exists():
        assert process.poll() is None, "snakemake ended before the first training checkpoint"
        assert time.time() < deadline, "no training checkpoint appeared"
        time.sleep(0.1)
    jobs = [job for job, comment in queued_jobs(workdir).items()
            if comment.startswith("rule_train_") and comment.endswith(f"{ARCH}_0")]
    assert len(jobs) == 1, f"fold 0's training job is not in squeue: {queued_jobs(workdir)}"
    subprocess.run(["scancel", jobs[0]], check=True)
    assert not (fold_dir / "model.pt").exists(), "training finished before it could be cancelled"
    return jobs[0], checkpoint


def wait_for_resubmission(workdir: Path, process, cancelled: str, timeout: float = 240) -> None:
    """Fail early, not at the workflow's timeout, when Snakemake does not resubmit the cancelled job."""
    deadline = time.time() + timeout
    while process.poll() is None and time.time() < deadline:
        if any(job != cancelled and comment.startswith("rule_train_") and comment.endswith(f"{ARCH}_0")
               for job, comment in queued_jobs(workdir).items()):
            return
        time.sleep(1)
    assert process.poll() is not None, (
        f"the cancelled SLURM job {cancelled} was not resubmitted within {timeout:.0f} s: does the plugin see "
        "its state? (profiles/slurm: slurm-status-command)")


def accounting(workdir: Path, since: datetime) -> pd.DataFrame:
    """sacct's record of the jobs run in workdir (one row per job, without steps)."""
    fields = ["JobIDRaw", "Partition", "Account", "AllocTRES", "State", "WorkDir", "Comment"]
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "-S", since.strftime("%Y-%m-%dT%H:%M:%S"), "-o", ",".join(fields)],
        capture_output=True, text=True, check=True,
    ).stdout
    table = pd.DataFrame([line.split("|") for line in out.splitlines() if line], columns=fields)
    table = table[table["WorkDir"].map(lambda w: Path(w) == workdir)].copy()
    table["rule"] = table["Comment"].str.extract(r"^rule_(.+?)(?:_wildcards_.*)?$", expand=False)
    return table


def test_slurm_profile_runs_and_recovers(slurm, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(slurm_config()))
    profile = ci_profile(tmp_path / "profile")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/results/mlflow.db"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--profile", str(profile), "--configfile", str(workdir / "config.yaml"), "--", *TARGETS]
    since = datetime.now().replace(microsecond=0)
    log_path = tmp_path / "snakemake.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        cancelled, checkpoint = cancel_after_first_checkpoint(workdir, process)
        wait_for_resubmission(workdir, process, cancelled)
        returncode = process.wait(timeout=600)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # snakemake cancels its SLURM jobs
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        leftover = list(queued_jobs(workdir))
        if leftover:
            subprocess.run(["scancel", *leftover])
    output = log_path.read_text()
    assert returncode == 0, output[-5000:]

    # The jobs went through SLURM with the profile's account, partitions and GPU requests.
    jobs = accounting(workdir, since)
    print(jobs.drop(columns="WorkDir").to_string(index=False))
    assert set(jobs["rule"]) == RULES, jobs
    assert (jobs["Account"] == ACCOUNT).all()
    on_gpu = jobs["rule"].isin(GPU_RULES)
    assert (jobs.loc[on_gpu, "Partition"] == "gpu").all() and (jobs.loc[~on_gpu, "Partition"] == "cpu").all(), jobs
    assert jobs.loc[on_gpu, "AllocTRES"].str.contains("gres/gpu=1").all(), jobs
    assert not jobs.loc[~on_gpu, "AllocTRES"].str.contains("gres/gpu").any(), jobs
    # The cancelled training job was resubmitted (the profile's `retries`) and resumed.
    states = jobs.set_index("JobIDRaw")["State"]
    assert states[cancelled].startswith("CANCELLED"), jobs
    assert (states.drop(cancelled) == "COMPLETED").all(), jobs
    train = jobs[jobs["rule"] == "train"]
    assert len(train) == 3 and train["Comment"].value_counts().max() == 2, train
    train_log = (workdir / f"logs/lens_finding/{ARCH}/fold0/train.log").read_text()
    resumed = re.search(r"resuming from (\S+) after epoch (\d+)", train_log)
    assert resumed and (workdir / resumed.group(1)).resolve() == checkpoint.resolve(), train_log[-2000:]
    assert 0 <= int(resumed.group(2)) < EPOCHS - 1
    assert not checkpoint.exists()  # removed once the model is saved

    # Every output is there; the resumed fold has all its epochs.
    results = workdir / "results/lens_finding"
    for fold in (0, 1):
        assert (results / f"{ARCH}/fold{fold}/model.pt").exists()
        assert len(pd.read_csv(results / f"{ARCH}/fold{fold}/history.csv")) == EPOCHS
    predictions = pd.read_parquet(results / f"{ARCH}/predictions.parquet")
    assert set(predictions["fold"]) == {0, 1}
    assert (results / f"{ARCH}/metrics.json").exists()
    assert list(pd.read_csv(results / "summary.csv")["architecture"]) == [ARCH]

    # Every MLflow run is there, finished, from one workflow run; the resumed training is one run.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("lens_finding").experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(
        [f"train/lens_finding/{ARCH}/fold{fold}" for fold in (0, 1)]
        + [f"evaluate/lens_finding/{ARCH}"]
    )
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["workflow_run"] for r in runs}) == 1
    fold0 = next(r for r in runs if r.info.run_name.endswith("fold0"))
    steps = [m.step for m in client.get_metric_history(fold0.info.run_id, "val_loss")]
    assert sorted(set(steps)) == list(range(1, EPOCHS + 1)), steps


def test_gpu_rules_go_to_the_gpu_partition():
    """Every rule that declares a `gpu` resource is routed to the GPU partition by the profile."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/profile.yaml").read_text())
    gpu_rules = set()
    for smk in sorted((ROOT / "workflow/rules").glob("*.smk")):
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", smk.read_text(), re.M | re.S):
            if re.search(r"^\s+resources:\n(?:\s{8}.*\n)*?\s{8}gpu=", match.group(2), re.M):
                gpu_rules.add(match.group(1))
    assert "train" in gpu_rules
    routed = {rule for rule, res in profile["set-resources"].items() if res.get("slurm_partition") == "gpu"}
    assert gpu_rules <= routed, f"add to profiles/slurm set-resources: {sorted(gpu_rules - routed)}"
