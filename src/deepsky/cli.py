"""`deepsky` command line: tools for users beside the workflow."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepsky", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="score FITS cutouts (or light curves) with a trained model, write a CSV")
    p.add_argument("--model", required=True, help="model.pt written by the train rule")
    p.add_argument("inputs", nargs="+", help="FITS files or folders of them (light-curve models: observation Parquet files)")
    p.add_argument("--output", "-o", help="CSV path (default: standard output); a folder for image outputs (deblended FITS)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")

    m = sub.add_parser("models", help="list the architectures of the registry with parameter counts")
    m.add_argument("pattern", nargs="?", default="*")
    m.add_argument("--image-size", type=int, default=48)
    m.add_argument("--in-channels", type=int, default=3)

    c = sub.add_parser("check-config", help="validate a config file against the schema")
    c.add_argument("path")

    args = parser.parse_args(argv)
    if args.command == "predict":
        from deepsky.predict import run

        return run(args.model, args.inputs, args.output, args.batch_size, args.device)
    if args.command == "models":
        from deepsky.models import list_models, parameter_table

        table = parameter_table(list_models(args.pattern), image_size=args.image_size, in_channels=args.in_channels)
        print(table.to_string(index=False))
        return 0
    if args.command == "check-config":
        from deepsky.config import ConfigError, load_config

        try:
            load_config(args.path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"{args.path}: valid")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
