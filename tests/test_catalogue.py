"""The figure catalogue and the workflow agree: every entry is produced, every figure is listed."""

import csv
import re
import subprocess
import sys

import pytest

from deepsky.figures.concepts import CONCEPT_FIGURES
from tests.conftest import ROOT

CATALOGUE = list(csv.DictReader(open(ROOT / "workflow/report/figures.csv")))


def planned_figures(tmp_path) -> dict[str, str]:
    """PNG outputs of the default workflow and the rule making each, from a dry run."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(ROOT / "config/config.yaml"), "-n", "--cores", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    planned = {}
    for block in re.split(r"\n\s*\n", result.stdout):
        rule = re.search(r"rule (\w+):", block)
        output = re.search(r"output: (.*)", block)
        if rule and output:
            for path in output.group(1).split(", "):
                if path.endswith(".png"):
                    planned[path.removeprefix("results/")] = rule.group(1)
    return planned


def test_every_figure_is_catalogued_and_every_entry_produced(tmp_path):
    planned = planned_figures(tmp_path)
    catalogued = {row["file"]: row["rule"] for row in CATALOGUE}
    assert sorted(set(planned) - set(catalogued)) == [], "figures missing from workflow/report/figures.csv"
    assert sorted(set(catalogued) - set(planned)) == [], "catalogue entries the workflow does not make"
    assert planned == catalogued, "catalogue names the wrong rule"


@pytest.mark.parametrize("row", CATALOGUE, ids=[r["file"] for r in CATALOGUE])
def test_names_follow_the_lecture(row):
    stem = row["file"].rsplit("/", 1)[-1]
    assert stem.startswith(row["lecture"] + "-"), "figure names start with their lecture number"
    assert row["slide"].strip()


def test_concept_registry_matches_catalogue():
    concepts = {r["file"].rsplit("/", 1)[-1][:-4] for r in CATALOGUE if r["rule"] == "concept_figure"}
    assert concepts == set(CONCEPT_FIGURES)


def test_a_lecture_target_plans_only_that_decks_figures(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(ROOT / "config/config.yaml"), "-n", "--cores", "1", "--", "lecture_004"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pngs = {p for p in re.findall(r"output: (.*)", result.stdout) for p in p.split(", ") if p.endswith(".png")}
    expected = {f"results/{row['file']}" for row in CATALOGUE if row["lecture"] == "004"}
    assert pngs and pngs <= expected, sorted(pngs - expected)
    assert "results/lens_finding/figures/004-roc-curves.png" in pngs
    assert "rule gradient_norms" not in result.stdout and "rule concept_figure" in result.stdout
