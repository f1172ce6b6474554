"""Concept figures of the lectures, computed with torch so that their numbers match the slides.

Each figure function ``fig_<name>(png_path) -> dict`` writes ``png_path`` and a PDF beside it and
returns the numbers it shows. :data:`CONCEPT_FIGURES` maps a file stem (lecture number + slide)
to its function.

Command line::

    python -m deepsky.figures.concepts STEM OUT.png
    python -m deepsky.figures.concepts --all OUTDIR      # OUTDIR/<stem>.png and .pdf
    python -m deepsky.figures.concepts --list
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from deepsky.figures.concepts_activations import fig_activation_functions, fig_sigmoid_cross_entropy
from deepsky.figures.concepts_conv import (
    fig_1d_convolution,
    fig_convolution_arithmetic,
    fig_fully_connected_parameters,
    fig_multichannel_convolution,
    fig_output_size_formula,
    fig_strides_dilation,
    fig_transposed_convolution_matrix,
)
from deepsky.figures.concepts_pooling import fig_pooling_types

# stem -> figure function; stem = <lecture seed number>-<slide>
CONCEPT_FIGURES: dict[str, Callable[..., dict]] = {
    "002-convolution-arithmetic": fig_convolution_arithmetic,
    "003-output-size-formula": fig_output_size_formula,
    "002-1d-convolution": fig_1d_convolution,
    "002-multichannel-convolution": fig_multichannel_convolution,
    "002-pooling-types": fig_pooling_types,
    "002-strides-dilation": fig_strides_dilation,
    "002-transposed-convolution-matrix": fig_transposed_convolution_matrix,
    "004-activation-functions": fig_activation_functions,
    "004-sigmoid-cross-entropy": fig_sigmoid_cross_entropy,
    "002-fully-connected-parameters": fig_fully_connected_parameters,
}

# stem -> slide title(s) it reproduces (as printed in the lecture text)
SLIDE_TITLES: dict[str, str] = {
    "002-convolution-arithmetic": "002 '2-D CONVOLUTION' (1/9 kernel, 5x5 input, 3x3 output)",
    "003-output-size-formula": "003 'CNN: hyperparameters' (W_out = (W_in - F + 2P)/S + 1)",
    "002-1d-convolution": "002 '1-D CONVOLUTION' / 'MULTIPLE CONVOLUTIONS WITH DIFFERENT KERNELS'",
    "002-multichannel-convolution": "002 'CONVOLUTIONS CAN ALSO BE COMPUTED ACROSS CHANNELS (OR COLORS)'",
    "002-pooling-types": "002 'TYPES OF POOLING' / 'MAX POOLING 1D'",
    "002-strides-dilation": "002 'OPTIONS: STRIDES' / 'OPTIONS: DILATION'",
    "002-transposed-convolution-matrix": "002 'TRANSPOSED CONVOLUTION' / 'CONVOLUTION MATRIX'",
    "004-activation-functions": "004 'Activation Functions' table",
    "004-sigmoid-cross-entropy": "004 'Why Sigmoid for classification?' / 'Some Loss intuition...' / "
    "'Cross-Entropy V.S. L2'",
    "002-fully-connected-parameters": "002 'LARGE DIMENSION SIGNALS ... TREMENDOUSLY LARGE MODELS' "
    "((512x512)^2 = 7e10)",
}


def make_figure(stem: str, png_path: str | Path) -> dict:
    """Draw the concept figure `stem` into `png_path` (+ PDF); return its numbers."""
    try:
        fn = CONCEPT_FIGURES[stem]
    except KeyError:
        raise KeyError(f"unknown concept figure {stem!r}; known: {', '.join(CONCEPT_FIGURES)}") from None
    return fn(png_path)


def make_all(outdir: str | Path) -> dict[str, Path]:
    outdir = Path(outdir)
    paths = {}
    for stem in CONCEPT_FIGURES:
        png = outdir / f"{stem}.png"
        make_figure(stem, png)
        paths[stem] = png
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepsky.figures.concepts", description=__doc__.split("\n")[0])
    parser.add_argument("stem", nargs="?", help="figure stem, see --list")
    parser.add_argument("out", nargs="?", help="output PNG path (a PDF is written beside it)")
    parser.add_argument("--all", metavar="OUTDIR", help="write every figure to OUTDIR/<stem>.png/.pdf")
    parser.add_argument("--list", action="store_true", help="list the stems and the slides they reproduce")
    args = parser.parse_args(argv)

    if args.list:
        for stem, title in SLIDE_TITLES.items():
            print(f"{stem}\t{title}")
        return 0
    if args.all:
        if args.stem or args.out:
            parser.error("--all takes no STEM/OUT arguments")
        for stem, png in make_all(args.all).items():
            print(png)
        return 0
    if not (args.stem and args.out):
        parser.error("give STEM OUT.png, or --all OUTDIR, or --list")
    if args.stem not in CONCEPT_FIGURES:
        parser.error(f"unknown stem {args.stem!r}; choose from: {', '.join(CONCEPT_FIGURES)}")
    make_figure(args.stem, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
