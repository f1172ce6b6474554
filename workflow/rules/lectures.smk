# One target per lecture deck (`snakemake lecture_003 --cores 2`): only the jobs that deck's
# figures need, from the figure catalogue (workflow/report/figures.csv).


def lecture_targets(lecture):
    """Evaluated when the target is asked for, after every rule file has been read."""

    def targets(wildcards):
        planned = set(all_targets())
        return [f"results/{row['file']}" for row in FIGURE_CATALOGUE
                if row["lecture"] == lecture and f"results/{row['file']}" in planned]

    return targets


for _lecture in sorted({row["lecture"] for row in FIGURE_CATALOGUE}):

    rule:
        name:
            f"lecture_{_lecture}"
        input:
            lecture_targets(_lecture),
