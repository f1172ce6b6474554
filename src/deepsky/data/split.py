"""Held-out test set, then stratified K folds of the rest; one table, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRAINVAL, TEST = "trainval", "test"


def make_split(catalog: pd.DataFrame, test_fraction: float, k_folds: int, seed: int) -> pd.DataFrame:
    """Columns: index, label, split ('trainval' | 'test'), fold (0..K-1, -1 for test).

    A catalog that already carries a `split` column (a dataset with an official test set)
    keeps it; otherwise the test set is a stratified draw of `test_fraction`.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split  # 0.9 s: not for every job

    table = catalog[["index", "label"]].copy().reset_index(drop=True)
    if "split" in catalog:
        table["split"] = catalog["split"].to_numpy()
        unknown = set(table["split"]) - {TRAINVAL, TEST}
        if unknown:
            raise ValueError(f"catalog split column has unknown values {sorted(unknown)}")
    else:
        _, test_idx = train_test_split(
            np.arange(len(table)), test_size=test_fraction, stratify=table["label"], random_state=seed
        )
        table["split"] = TRAINVAL
        table.loc[test_idx, "split"] = TEST
    table["fold"] = -1
    pool = np.flatnonzero(table["split"].to_numpy() == TRAINVAL)
    counts = table.loc[pool, "label"].value_counts()
    if counts.min() < k_folds:
        raise ValueError(
            f"k_folds={k_folds} needs at least {k_folds} train+validation images per class; "
            f"smallest class has {counts.min()}"
        )
    folds = StratifiedKFold(n_splits=k_folds, shuffle=True, random_state=seed)
    for fold, (_, val_pos) in enumerate(folds.split(pool, table.loc[pool, "label"])):
        table.loc[pool[val_pos], "fold"] = fold
    return table


def fold_indices(split: pd.DataFrame, fold: int) -> dict[str, np.ndarray]:
    """Image indices of the train, validation and test parts for one fold."""
    if fold not in set(split["fold"]):
        raise ValueError(f"fold {fold} is not in the split table (folds: {sorted(set(split['fold']) - {-1})})")
    trainval = split["split"] == TRAINVAL
    return {
        "train": split.loc[trainval & (split["fold"] != fold), "index"].to_numpy(),
        "val": split.loc[trainval & (split["fold"] == fold), "index"].to_numpy(),
        "test": split.loc[split["split"] == TEST, "index"].to_numpy(),
    }
