"""Wall time of the default workflow (`snakemake --cores N`) in a fresh temporary directory.

    python benchmarks/workflow.py [--cores 2] [--keep]

Prints the wall time and the AUROC per architecture from the run's summary.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="deepsky-bench-"))
    shutil.copytree(ROOT / "config", workdir / "config")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--cores", str(args.cores), "--quiet", "rules"],
        check=True,
    )
    seconds = time.perf_counter() - start
    print(f"default workflow, --cores {args.cores}: {seconds / 60:.1f} min wall time")
    for summary in sorted(workdir.glob("results/*/summary.csv")):
        print(summary.parent.name)
        print(pd.read_csv(summary).to_string(index=False))
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
