import numpy as np
import pandas as pd

from deepsky.data import storage
from deepsky.data.augment import augment_dataset, augment_one, dihedral, shift
from deepsky.data.split import make_split
from deepsky.data.tensors import load_fold


def test_dihedral_gives_the_eight_symmetries_of_the_square():
    image = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5)
    versions = {dihedral(image, k).tobytes() for k in range(8)}
    assert len(versions) == 8
    for k in range(8):
        out = dihedral(image, k)
        assert sorted(out.ravel()) == sorted(image.ravel())


def test_shift_moves_content_without_wrapping():
    image = np.zeros((1, 9, 9), dtype=np.float32)
    image[0, 4, 4] = 1.0
    out = shift(image, 2, -1)
    assert out[0, 6, 3] == 1.0 and out.sum() == 1.0
    edge = np.zeros((1, 9, 9), dtype=np.float32)
    edge[0, 8, :] = 5.0  # bottom row must not reappear at the top
    assert shift(edge, 2, 0)[0, 0].sum() == 0.0


def test_augment_one_is_seeded():
    image = np.random.default_rng(0).normal(size=(3, 16, 16)).astype(np.float32)
    settings = {"dihedral": True, "max_shift": 2, "noise_sigma": 0.5}
    a, info_a = augment_one(image, np.random.default_rng(5), settings)
    b, info_b = augment_one(image, np.random.default_rng(5), settings)
    assert np.array_equal(a, b) and info_a == info_b


def make_dataset(tmp_path, n=60):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(n, 2, 12, 12)).astype(np.float32)
    images[:, 0, 0, 0] = np.arange(n)  # tag each image so copies can be traced
    catalog = pd.DataFrame({"index": np.arange(n), "label": np.arange(n) % 2})
    storage.save_images(tmp_path / "images.npy", images)
    storage.save_table(tmp_path / "catalog.parquet", catalog)
    split = make_split(catalog, 0.2, 4, seed=0)
    storage.save_table(tmp_path / "split.parquet", split)
    return images, split


def test_no_test_image_is_augmented(tmp_path):
    images, split = make_dataset(tmp_path)
    augmented, catalog = augment_dataset(images, split, {"copies": 3, "dihedral": True, "max_shift": 1}, seed=1)
    test = set(split.loc[split["split"] == "test", "index"])
    assert len(augmented) == 3 * (len(split) - len(test))
    assert not set(catalog["source_index"]) & test
    # Content check, not only bookkeeping: every copy is a transform of its own source.
    for row in catalog.itertuples():
        source = images[row.source_index]
        expected = shift(dihedral(source, row.dihedral), row.dy, row.dx)
        assert np.allclose(augmented[row.aug_index], expected)


def test_training_set_of_a_fold_only_holds_copies_of_its_training_images(tmp_path):
    images, split = make_dataset(tmp_path)
    augmented, catalog = augment_dataset(images, split, {"copies": 2, "dihedral": True, "max_shift": 0}, seed=1)
    aug_dir = tmp_path / "augmented"
    storage.save_images(aug_dir / "images.npy", augmented)
    storage.save_table(aug_dir / "catalog.parquet", catalog)
    data = load_fold(tmp_path, tmp_path / "split.parquet", 1, aug_dir)
    held_out = set(data["val_index"]) | set(data["test_index"])
    assert not set(data["train_augmented_sources"]) & held_out
    assert len(data["train"][0]) == len(data["train_index"]) * 3


def test_mirror_only_for_pictures_with_an_up():
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    seen = set()
    for seed in range(20):
        out, info = augment_one(image, np.random.default_rng(seed), {"dihedral": False, "mirror": True})
        seen.add(info["dihedral"])
        assert np.array_equal(out, image) or np.array_equal(out, image[..., ::-1])
    assert seen == {0, 4}
