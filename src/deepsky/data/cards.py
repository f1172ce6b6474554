"""Dataset cards: what a dataset is, where it came from, and its checksum, beside the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepsky.data import storage

PARAM_SUMMARY_MAX = 40


def parameter_ranges(catalog: pd.DataFrame) -> dict:
    ranges = {}
    skip = {"index", "label"}
    for column in catalog.columns:
        if column in skip or not pd.api.types.is_numeric_dtype(catalog[column]):
            continue
        values = catalog[column].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if values.size:
            ranges[column] = {
                "min": float(values.min()),
                "median": float(np.median(values)),
                "max": float(values.max()),
            }
        if len(ranges) >= PARAM_SUMMARY_MAX:
            break
    return ranges


def write_card(out_dir, *, name, source, description, class_names, catalog, images_shape, bands, provenance) -> dict:
    out_dir = Path(out_dir)
    counts = catalog["class_name"].value_counts().reindex(class_names, fill_value=0)
    card = {
        "name": name,
        "source": source,
        "description": description,
        "class_names": class_names,
        "n_images": int(images_shape[0]),
        "image_shape": [int(s) for s in images_shape[1:]],
        "bands": bands,
        "counts": {k: int(v) for k, v in counts.items()},
        "class_balance": {k: round(int(v) / max(1, int(images_shape[0])), 4) for k, v in counts.items()},
        "images_sha256": storage.sha256_file(out_dir / storage.IMAGES),
        "catalog_sha256": storage.sha256_file(out_dir / storage.CATALOG),
        "parameter_ranges": parameter_ranges(catalog),
        "provenance": provenance,
    }
    if "kind" in catalog:
        card["counts_by_kind"] = {k: int(v) for k, v in catalog["kind"].value_counts().sort_index().items()}
    storage.write_json(out_dir / storage.CARD, card)
    (out_dir / "card.md").write_text(card_markdown(card))
    return card


def card_markdown(card: dict) -> str:
    lines = [
        f"# Dataset card: {card['name']}",
        "",
        card["description"],
        "",
        f"- source: `{card['source']}`",
        f"- images: {card['n_images']} of shape {tuple(card['image_shape'])} (bands: {', '.join(card['bands']) or 'n/a'})",
        f"- images.npy SHA-256: `{card['images_sha256']}`",
        f"- citation: {card['provenance'].get('citation', 'n/a')}",
        f"- licence: {card['provenance'].get('licence', 'see source')}",
        "",
        "| class | count | share |",
        "|---|---:|---:|",
    ]
    for name in card["class_names"]:
        lines.append(f"| {name} | {card['counts'][name]} | {card['class_balance'][name]:.3f} |")
    if card.get("parameter_ranges"):
        lines += ["", "| parameter | min | median | max |", "|---|---:|---:|---:|"]
        for key, r in card["parameter_ranges"].items():
            lines.append(f"| {key} | {r['min']:.4g} | {r['median']:.4g} | {r['max']:.4g} |")
    return "\n".join(lines) + "\n"
