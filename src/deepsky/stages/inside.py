"""Looking inside a trained network (lecture 002): filters, feature maps, top-9 inputs,
occlusion, saliency and Grad-CAM, class maximisation, on the model's unseen test images."""

from __future__ import annotations

from pathlib import Path


from deepsky.data import storage
from deepsky.data.tensors import load_test_set
from deepsky.models_io import load_model
from deepsky.stages.common import experiment_tags, logged, set_threads
from deepsky.tracking import Run


def main(smk) -> None:
    from deepsky.figures.inside import render_inside_figures

    w = smk.wildcards
    with logged(smk.log[0]):
        set_threads(smk.threads)
        data_dir = Path(smk.input.card).parent
        model, meta = load_model(smk.input.model, "cpu")
        _, images, labels = load_test_set(data_dir, smk.input.split, smk.params.max_images)
        outdir = Path(smk.output[0]).parent
        numbers = render_inside_figures(model, meta, images, labels, outdir, [Path(p).stem for p in smk.output])
        storage.write_json(outdir / "numbers.json", numbers)
        card = storage.read_card(data_dir)
        tags = experiment_tags(smk.config, w.experiment, card, stage="figure", architecture=w.arch, fold=w.fold)
        with Run(smk.config["tracking"], w.experiment, f"inside/{w.experiment}/{w.arch}/fold{w.fold}", tags) as run:
            for png in smk.output:
                run.log_artifact(png, "inside")
            run.log_artifact(outdir / "numbers.json", "inside")
