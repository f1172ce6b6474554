"""Wall time and disk use of the default workflow (`snakemake --cores N`) in a fresh directory,
with the time per stage (the rule file a job's rule comes from) read from Snakemake's own log.

    python benchmarks/workflow.py [--cores 2] [--keep] [--target all]
    python benchmarks/workflow.py --log path/to/.snakemake/log/X.snakemake.log   # analyse a past run
    python benchmarks/workflow.py --log LOG --lectures WORKDIR   # + per-lecture estimates from it

Prints the wall time against the 30-minute goal, how busy the cores were, the job seconds per
stage and per rule, the largest result folders against the 1 GB goal, and the K-fold summaries.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
GOAL_MINUTES = 30
GOAL_BYTES = 1 << 30
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
STARTED = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
OUTPUT = re.compile(r"^\s+output: (\S+?),? ")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def rule_stages() -> dict[str, str]:
    """Rule name -> the rule file (stage) defining it."""
    stages = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for name in re.findall(r"^rule (\w+):", smk.read_text(), flags=re.M):
            stages[name] = smk.stem.removesuffix("_common")
    return stages


def job_times(log: Path) -> pd.DataFrame:
    """One row per finished job: rule, start, end, seconds (from the log's timestamps)."""
    started, rows, stamp, rule, output = {}, [], None, None, None
    for line in log.read_text().splitlines():
        if m := STAMP.match(line):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := STARTED.match(line):
            rule, output = m.group(1), None
        elif (m := OUTPUT.match(line + " ")) and rule is not None:
            output = m.group(1)
        elif (m := JOBID.match(line)) and rule is not None:
            started[int(m.group(1))] = (rule, output, stamp)
            rule = None
        elif m := FINISHED.match(line):
            job = int(m.group(1))
            if job in started:
                name, out, start = started.pop(job)
                rows.append({"rule": name, "output": out, "start": start, "end": stamp,
                             "seconds": (stamp - start).total_seconds()})
    return pd.DataFrame(rows, columns=["rule", "output", "start", "end", "seconds"])


def lecture_estimates(jobs: pd.DataFrame, workdir: Path, cores: int) -> None:
    """Per lecture target: the jobs a fresh `snakemake lecture_00N` would run (a forced dry run in
    the finished run's folder) and their job seconds from the full run, over the cores: a lower
    bound on its wall time, since a small DAG keeps the cores less busy."""
    print(f"\nper lecture target (estimated: job seconds of its DAG in this run / {cores} cores):")
    by_output = jobs.set_index("output")["seconds"]
    for n in range(5):
        target = f"lecture_00{n}"
        dry = subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
             "-n", "--forceall", "--cores", str(cores), target], capture_output=True, text=True,
        )
        outputs = [m.group(1) for line in dry.stdout.splitlines() if (m := OUTPUT.match(line + " "))]
        seconds = float(by_output.reindex(outputs).fillna(0).sum())
        print(f"  {target}: {len(outputs)} jobs, {seconds / 60:.1f} min of job time -> ~{seconds / cores / 60:.1f} min on {cores} cores")


def experiment_of(output: str) -> str:
    """results/<experiment or data/<dataset>>/...: what a job's first output belongs to."""
    parts = output.split("/")
    if len(parts) < 3:
        return "other"
    return f"data/{parts[2]}" if parts[1] == "data" else parts[1]


def report_times(jobs: pd.DataFrame, wall_seconds: float, cores: int) -> None:
    stages = rule_stages()
    jobs = jobs.assign(stage=jobs["rule"].map(lambda r: stages.get(r, "other")),
                       experiment=jobs["output"].fillna("").map(experiment_of))
    busy = jobs["seconds"].sum()
    verdict = "within" if wall_seconds <= GOAL_MINUTES * 60 else "OVER"
    print(f"wall time: {wall_seconds / 60:.1f} min for {len(jobs)} jobs ({verdict} the {GOAL_MINUTES}-minute goal: "
          f"ratio {wall_seconds / (GOAL_MINUTES * 60):.2f})")
    print(f"job seconds: {busy:.0f} s; cores busy {busy / (wall_seconds * cores):.0%} of the time on {cores} cores")
    for key in ("stage", "experiment", "rule"):
        table = jobs.groupby(key)["seconds"].agg(jobs="count", seconds="sum", longest="max").sort_values("seconds", ascending=False)
        table["share"] = (table["seconds"] / busy).map("{:.0%}".format)
        print(f"\nper {key}:")
        print(table.round(0).to_string())


def report_disk(results: Path) -> None:
    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size

    total = size(results)
    verdict = "within" if total <= GOAL_BYTES else "OVER"
    print(f"\nresults/: {total / 2**20:.0f} MiB ({verdict} the 1 GB goal)")
    parts = sorted(((size(p), p.name) for p in results.iterdir()), reverse=True)[:10]
    for nbytes, name in parts:
        print(f"  {nbytes / 2**20:8.1f} MiB  {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--target", default="all")
    parser.add_argument("--log", type=Path, help="analyse this Snakemake log instead of running")
    parser.add_argument("--lectures", type=Path, metavar="WORKDIR", help="with --log: estimate each lecture target")
    args = parser.parse_args()
    if args.log:
        jobs = job_times(args.log)
        report_times(jobs, (jobs["end"].max() - jobs["start"].min()).total_seconds(), args.cores)
        if args.lectures:
            report_disk(args.lectures / "results")
            lecture_estimates(jobs, args.lectures, args.cores)
        return
    workdir = Path(tempfile.mkdtemp(prefix="deepsky-bench-"))
    shutil.copytree(ROOT / "config", workdir / "config")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--cores", str(args.cores), args.target],
        check=True,
    )
    seconds = time.perf_counter() - start
    log = max((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    jobs = job_times(log)
    report_times(jobs, seconds, args.cores)
    report_disk(workdir / "results")
    lecture_estimates(jobs, workdir, args.cores)
    for summary in sorted(workdir.glob("results/*/summary.csv")):
        print(f"\n{summary.parent.name}")
        print(pd.read_csv(summary).to_string(index=False))
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
