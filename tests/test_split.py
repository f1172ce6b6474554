import numpy as np
import pandas as pd
import pytest

from deepsky.data.split import fold_indices, make_split


def catalog(n_per_class=500, classes=2):
    labels = np.repeat(np.arange(classes), n_per_class)
    return pd.DataFrame({"index": np.arange(len(labels)), "label": labels})


def test_lecture_proportions():
    # 10000 images: 2000 test, 8000 train+validation -> 6400 / 1600 per fold with K=5.
    table = make_split(catalog(5000), test_fraction=0.2, k_folds=5, seed=1)
    assert (table["split"] == "test").sum() == 2000
    parts = fold_indices(table, 0)
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (6400, 1600, 2000)


def test_parts_are_disjoint_and_cover_everything():
    table = make_split(catalog(300, 3), 0.2, 5, seed=2)
    for fold in range(5):
        parts = fold_indices(table, fold)
        train, val, test = (set(parts[k]) for k in ("train", "val", "test"))
        assert not train & val and not train & test and not val & test
        assert train | val | test == set(range(900))


def test_validation_folds_partition_the_pool():
    table = make_split(catalog(300), 0.2, 5, seed=2)
    vals = [set(fold_indices(table, f)["val"]) for f in range(5)]
    assert sum(len(v) for v in vals) == len(set().union(*vals)) == 480


def test_stratified():
    table = make_split(catalog(500, 2), 0.2, 5, seed=3)
    for fold in range(5):
        parts = fold_indices(table, fold)
        for name in ("train", "val", "test"):
            labels = table.set_index("index").loc[parts[name], "label"]
            assert labels.mean() == pytest.approx(0.5, abs=0.01)


def test_seeded():
    a = make_split(catalog(), 0.2, 5, seed=7)
    b = make_split(catalog(), 0.2, 5, seed=7)
    c = make_split(catalog(), 0.2, 5, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_official_test_set_is_kept():
    cat = catalog(50)
    cat["split"] = np.where(cat["index"] % 5 == 0, "test", "trainval")
    table = make_split(cat, 0.2, 5, seed=1)
    assert (table["split"] == cat["split"]).all()
    assert (table.loc[table["split"] == "test", "fold"] == -1).all()


def test_too_few_images_for_k_folds():
    with pytest.raises(ValueError, match="k_folds=5"):
        make_split(catalog(4), 0.25, 5, seed=1)


def test_unknown_fold():
    table = make_split(catalog(50), 0.2, 5, seed=1)
    with pytest.raises(ValueError, match="fold 7"):
        fold_indices(table, 7)
