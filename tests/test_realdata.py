"""Tests of deepsky.data.realdata on small archives built in the real formats at test time."""

from __future__ import annotations

import io
import tarfile
import zipfile

import h5py
import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from deepsky.data.realdata import (
    BOLOGNA_GROUND_BANDS,
    GALAXY10_DECALS_CLASSES,
    GALAXY10_DECALS_LECTURE_CLASSES,
    GALAXY10_SDSS_CLASSES,
    GALAXY10_SDSS_LECTURE_CLASSES,
    RealDataError,
    _resize_square,
    read_bologna_challenge,
    read_galaxy10,
    read_petimages,
)

# --------------------------------------------------------------------------- Galaxy10


def _write_galaxy10(path, n=40, size=69, *, extras=True, pxscale=False, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    ans = (np.arange(n) % 10).astype(np.uint8)
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["ans"] = ans
        if extras:
            f["ra"] = np.linspace(0, 360, n)
            f["dec"] = np.linspace(-10, 10, n)
            f["redshift"] = np.linspace(0.01, 0.2, n)
        if pxscale:
            f["pxscale"] = np.full(n, 0.262)
    return images, ans


@pytest.fixture
def galaxy10_sdss(tmp_path):
    path = tmp_path / "Galaxy10.h5"
    images, ans = _write_galaxy10(path)
    return path, images, ans


def test_galaxy10_class_lists():
    assert len(GALAXY10_SDSS_CLASSES) == 10 and len(GALAXY10_DECALS_CLASSES) == 10
    sdss, decals = GALAXY10_SDSS_LECTURE_CLASSES, GALAXY10_DECALS_LECTURE_CLASSES
    assert list(sdss) == list(decals) == ["round", "edge_on", "spiral"]
    assert [GALAXY10_SDSS_CLASSES[i] for i in sdss["round"]] == ["Smooth, Completely round"]
    assert all(GALAXY10_SDSS_CLASSES[i].startswith("Disk, Edge-on") for i in sdss["edge_on"])
    assert sum(c.startswith("Disk, Edge-on") for c in GALAXY10_SDSS_CLASSES) == len(sdss["edge_on"]) == 3
    assert all(GALAXY10_SDSS_CLASSES[i].endswith("Spiral") for i in sdss["spiral"])
    assert GALAXY10_SDSS_CLASSES[0] == "Disk, Face-on, No Spiral"  # not a spiral
    assert [GALAXY10_DECALS_CLASSES[i] for i in decals["round"]] == ["Round Smooth Galaxies"]
    assert all(GALAXY10_DECALS_CLASSES[i].startswith("Edge-on") for i in decals["edge_on"])
    assert all("Spiral" in GALAXY10_DECALS_CLASSES[i] for i in decals["spiral"])
    assert sum("Spiral" in c for c in GALAXY10_DECALS_CLASSES) == 3


def test_read_galaxy10_sdss(galaxy10_sdss):
    path, raw, ans = galaxy10_sdss
    images, labels, cat = read_galaxy10(path, GALAXY10_SDSS_LECTURE_CLASSES)
    keep = np.flatnonzero(np.isin(ans, [1, 4, 5, 6, 7, 8, 9]))
    assert images.shape == (len(keep), 3, 69, 69) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.shape == (len(keep),)
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_allclose(images, raw[keep].transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    expected = np.select([ans[keep] == 1, np.isin(ans[keep], [4, 5, 6])], [0, 1], 2)
    np.testing.assert_array_equal(labels, expected)
    for col in ("index", "label", "class_name", "source_label", "source_index", "ra", "dec", "redshift"):
        assert col in cat.columns
    assert len(cat) == len(keep)
    np.testing.assert_array_equal(cat["index"], np.arange(len(keep)))
    np.testing.assert_array_equal(cat["source_index"], keep)
    np.testing.assert_array_equal(cat["source_label"], ans[keep])
    np.testing.assert_array_equal(cat["label"], labels)
    assert set(cat["class_name"]) == {"round", "edge_on", "spiral"}
    assert (cat.loc[cat.source_label == 1, "source_class_name"] == "Smooth, Completely round").all()
    np.testing.assert_allclose(cat["ra"], np.linspace(0, 360, 40)[keep])
    assert "pxscale" not in cat.columns


def test_read_galaxy10_slabs_and_resize(galaxy10_sdss):
    path, _, _ = galaxy10_sdss
    ref, ref_labels, _ = read_galaxy10(path, {"a": [0, 3], "b": [9]})
    small, labels, _ = read_galaxy10(path, {"a": [0, 3], "b": [9]}, rows_per_read=7)
    np.testing.assert_array_equal(small, ref)
    np.testing.assert_array_equal(labels, ref_labels)
    resized, _, _ = read_galaxy10(path, {"a": [0, 3], "b": [9]}, image_size=32)
    assert resized.shape == (len(ref), 3, 32, 32)
    assert resized.dtype == np.float32 and 0 <= resized.min() and resized.max() <= 1


def test_read_galaxy10_decals_names(tmp_path):
    path = tmp_path / "Galaxy10_DECals.h5"
    _write_galaxy10(path, n=20, size=256, extras=True, pxscale=True)
    images, labels, cat = read_galaxy10(path, GALAXY10_DECALS_LECTURE_CLASSES, image_size=64)
    assert images.shape == (len(cat), 3, 64, 64)
    assert set(cat["source_label"]) == {2, 5, 6, 7, 8, 9}
    assert (cat.loc[cat.source_label == 2, "source_class_name"] == "Round Smooth Galaxies").all()
    assert "pxscale" in cat.columns
    np.testing.assert_array_equal(labels[cat.source_label.to_numpy() == 8], 1)


def test_read_galaxy10_without_coordinates(tmp_path):
    path = tmp_path / "g.h5"
    _write_galaxy10(path, n=12, extras=False)
    _, _, cat = read_galaxy10(path, {"x": [1]})
    assert len(cat) == 2 and not {"ra", "dec", "redshift"} & set(cat.columns)  # rows 1 and 11


def test_read_galaxy10_errors(tmp_path):
    missing = tmp_path / "missing_ans.h5"
    with h5py.File(missing, "w") as f:
        f["images"] = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(RealDataError, match=r"missing_ans\.h5.*'ans'"):
        read_galaxy10(missing, {"x": [1]})

    shape = tmp_path / "shape.h5"
    with h5py.File(shape, "w") as f:
        f["images"] = np.zeros((3, 8, 8), np.uint8)
        f["ans"] = np.zeros(3, np.uint8)
    with pytest.raises(RealDataError, match=r"shape\.h5.*\(3, 8, 8\)"):
        read_galaxy10(shape, {"x": [1]})

    nlab = tmp_path / "nlab.h5"
    with h5py.File(nlab, "w") as f:
        f["images"] = np.zeros((3, 8, 8, 3), np.uint8)
        f["ans"] = np.zeros(4, np.uint8)
    with pytest.raises(RealDataError, match=r"nlab\.h5.*'ans' has shape"):
        read_galaxy10(nlab, {"x": [1]})

    labels = tmp_path / "labels.h5"
    with h5py.File(labels, "w") as f:
        f["images"] = np.zeros((3, 8, 8, 3), np.uint8)
        f["ans"] = np.array([0, 12, 3], np.uint8)
    with pytest.raises(RealDataError, match=r"labels\.h5.*outside 0-9"):
        read_galaxy10(labels, {"x": [1]})

    noth5 = tmp_path / "not.h5"
    noth5.write_bytes(b"hello")
    with pytest.raises(RealDataError, match=r"not\.h5"):
        read_galaxy10(noth5, {"x": [1]})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_galaxy10(tmp_path / "nowhere.h5", {"x": [1]})


def test_read_galaxy10_bad_class_map(galaxy10_sdss):
    path, _, _ = galaxy10_sdss
    with pytest.raises(ValueError, match="outside 0-9"):
        read_galaxy10(path, {"x": [10]})
    with pytest.raises(ValueError, match="both"):
        read_galaxy10(path, {"x": [1, 2], "y": [2]})
    with pytest.raises(ValueError, match="empty"):
        read_galaxy10(path, {})


# --------------------------------------------------------------------------- PetImages


def _jpeg(color, size, seed) -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    arr = np.empty((h, w, 3), np.uint8)
    arr[:] = color
    arr = np.clip(arr.astype(int) + rng.integers(-20, 21, arr.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png(size=(40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (0, 255, 0)).save(buf, format="PNG")
    return buf.getvalue()


SIZES = [(80, 60), (60, 90), (50, 50), (120, 70), (64, 64)]


@pytest.fixture
def pet_zip(tmp_path):
    path = tmp_path / "kagglecatsanddogs_5340.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme[1].txt", "Kaggle cats and dogs")
        zf.writestr("CDLA-Permissive-2.0.pdf", "not really a pdf")
        zf.writestr("PetImages/", "")
        zf.writestr("PetImages/Cat/", "")
        zf.writestr("PetImages/Dog/", "")
        for i, size in enumerate(SIZES):
            zf.writestr(f"PetImages/Cat/{i}.jpg", _jpeg((220, 40, 40), size, i))  # red cats
            zf.writestr(f"PetImages/Dog/{i}.jpg", _jpeg((40, 40, 220), size, 100 + i))  # blue dogs
        good = _jpeg((220, 40, 40), (200, 200), 7)
        zf.writestr("PetImages/Cat/666.jpg", b"")  # zero bytes
        zf.writestr("PetImages/Cat/10404.jpg", good[: len(good) // 3])  # truncated JPEG
        zf.writestr("PetImages/Dog/11702.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)  # garbage
        zf.writestr("PetImages/Dog/2317.jpg", _png())  # a PNG named .jpg
        zf.writestr("PetImages/Cat/Thumbs.db", b"\xd0\xcf\x11\xe0 thumbnail cache")
        zf.writestr("PetImages/Dog/Thumbs.db", b"\xd0\xcf\x11\xe0 thumbnail cache")
    return path


BAD_MEMBERS = {
    "PetImages/Cat/666.jpg",
    "PetImages/Cat/10404.jpg",
    "PetImages/Dog/11702.jpg",
    "PetImages/Dog/2317.jpg",
    "PetImages/Cat/Thumbs.db",
    "PetImages/Dog/Thumbs.db",
}


def test_read_petimages(pet_zip):
    images, labels, cat, counts = read_petimages(pet_zip, n_train=6, n_test=2, image_size=16, seed=3)
    assert images.shape == (8, 3, 16, 16) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    assert labels.dtype == np.int64
    assert list(cat.columns) == ["index", "label", "class_name", "member_name", "split"]
    np.testing.assert_array_equal(cat["label"], labels)
    assert list(cat["split"]) == ["trainval"] * 6 + ["test"] * 2
    assert (cat.groupby(["split", "class_name"]).size().to_dict()) == {
        ("test", "cat"): 1,
        ("test", "dog"): 1,
        ("trainval", "cat"): 3,
        ("trainval", "dog"): 3,
    }
    assert not set(cat["member_name"]) & BAD_MEMBERS
    assert cat["member_name"].is_unique
    assert all(
        name.startswith("PetImages/Cat/" if c == "cat" else "PetImages/Dog/")
        for name, c in zip(cat["member_name"], cat["class_name"])
    )
    # cats were drawn red, dogs blue: the pixels must follow their labels
    red, blue = images[:, 0].mean(axis=(1, 2)), images[:, 2].mean(axis=(1, 2))
    np.testing.assert_array_equal(labels, (blue > red).astype(np.int64))
    assert counts == {
        "read": 16,
        "dropped": {"not_jpg_name": 2, "empty": 1, "not_jpeg": 1, "corrupt": 2},
        "dropped_total": 6,
        "valid": {"cat": 5, "dog": 5},
        "used": {"cat": 4, "dog": 4},
        "used_trainval": {"cat": 3, "dog": 3},
        "used_test": {"cat": 1, "dog": 1},
    }


def test_read_petimages_is_seeded(pet_zip):
    a = read_petimages(pet_zip, n_train=4, n_test=2, image_size=8, seed=1)
    b = read_petimages(pet_zip, n_train=4, n_test=2, image_size=8, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert list(a[2]["member_name"]) == list(b[2]["member_name"])
    others = [
        list(read_petimages(pet_zip, n_train=4, n_test=2, image_size=8, seed=s)[2]["member_name"])
        for s in (2, 3, 4)
    ]
    assert any(o != list(a[2]["member_name"]) for o in others)


def test_read_petimages_errors(pet_zip, tmp_path):
    with pytest.raises(RealDataError, match="only 5 valid cat images"):
        read_petimages(pet_zip, n_train=10, n_test=2, image_size=8, seed=0)
    with pytest.raises(ValueError, match="even"):
        read_petimages(pet_zip, n_train=3, n_test=2, image_size=8, seed=0)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("other/a.jpg", _jpeg((0, 0, 0), (8, 8), 0))
    with pytest.raises(RealDataError, match=r"empty\.zip.*PetImages"):
        read_petimages(empty, n_train=2, n_test=0, image_size=8, seed=0)
    notzip = tmp_path / "no.zip"
    notzip.write_bytes(b"nope")
    with pytest.raises(RealDataError, match="not a zip"):
        read_petimages(notzip, n_train=2, n_test=0, image_size=8, seed=0)


def test_center_crop_then_resize():
    arr = np.zeros((10, 30, 3), np.uint8)
    arr[:, :10] = (0, 255, 0)
    arr[:, 10:20] = (255, 0, 0)
    arr[:, 20:] = (0, 255, 0)
    out = np.asarray(_resize_square(Image.fromarray(arr), 5))
    assert out.shape == (5, 5, 3)
    assert (out[..., 0] == 255).all() and (out[..., 1] == 0).all()


# --------------------------------------------------------------------------- Bologna challenge

IDS = [100002, 100003, 100004, 100008, 100010, 100014]
IS_LENS = [1, 1, 0, 0, 0, 1]


def _fits_bytes(arr) -> bytes:
    buf = io.BytesIO()
    fits.PrimaryHDU(arr).writeto(buf)
    return buf.getvalue()


def _cutout(obj: int, band: int) -> np.ndarray:
    return np.full((101, 101), obj * 10 + band, dtype=np.float32)


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _write_challenge(path, *, csv_first=True, skip=None, with_csv=True, wrong_filter=False):
    header = "ID,is_lens,Einstein_area,numb_pix_lensed_image,flux_lensed_image_in_sigma\n"
    rows = "".join(
        f"{i},{lens},{0.5 * lens},{30 * lens},{5 * lens}\n" for i, lens in zip(IDS, IS_LENS)
    )
    csv = (header + rows).encode()
    with tarfile.open(path, "w:gz") as tf:
        if with_csv and csv_first:
            _add(tf, "GroundBasedTraining/classifications.csv", csv)
        for k, (folder, flt) in enumerate(BOLOGNA_GROUND_BANDS):
            for obj in IDS:
                if skip == (obj, k):
                    continue
                arr = _cutout(obj, k + 1)
                if obj == 100003 and k == 0:
                    arr[0, :5] = 100.0  # masked pixels
                if obj == 100004 and k == 2:
                    arr[50, 50] = np.nan
                if wrong_filter and k == 1:
                    flt = "Z"
                _add(tf, f"GroundBasedTraining/Public/{folder}/imageSDSS_{flt}-{obj}.fits", _fits_bytes(arr))
        if with_csv and not csv_first:
            _add(tf, "GroundBasedTraining/classifications.csv", csv)


@pytest.mark.parametrize("csv_first", [True, False])
def test_read_bologna_challenge(tmp_path, csv_first):
    path = tmp_path / "GroundBasedTraining.tar.gz"
    _write_challenge(path, csv_first=csv_first)
    images, labels, cat = read_bologna_challenge(path)
    assert images.shape == (len(IDS), 4, 101, 101) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, IS_LENS)
    assert labels.dtype == np.int64
    for row, obj in enumerate(IDS):
        for k in range(4):
            vals = images[row, k]
            expected = obj * 10 + k + 1
            if (obj, k) == (100003, 0):
                assert (vals[0, :5] == 0).all()
                vals = vals[1:]
            if (obj, k) == (100004, 2):
                assert vals[50, 50] == 0
                vals = np.delete(vals.ravel(), 50 * 101 + 50)
            assert (vals == expected).all(), (obj, k)
    assert list(cat.columns[:3]) == ["index", "ID", "label"]
    for col in ("is_lens", "Einstein_area", "numb_pix_lensed_image", "flux_lensed_image_in_sigma"):
        assert col in cat.columns
    np.testing.assert_array_equal(cat["ID"], IDS)
    assert cat.set_index("ID").loc[100003, "n_masked"] == 5
    assert cat.set_index("ID").loc[100004, "n_nonfinite"] == 1
    assert cat["n_masked"].sum() == 5 and cat["n_nonfinite"].sum() == 1


def test_read_bologna_keeps_raw_values(tmp_path):
    path = tmp_path / "g.tar.gz"
    _write_challenge(path)
    images, _, _ = read_bologna_challenge(path, mask_fill=None)
    assert (images[1, 0, 0, :5] == 100.0).all()
    assert np.isnan(images[2, 2, 50, 50])


def test_read_bologna_errors(tmp_path):
    path = tmp_path / "skip.tar.gz"
    _write_challenge(path, skip=(100008, 3))
    with pytest.raises(RealDataError, match=r"skip\.tar\.gz.*ID 100008 \(Band4\)"):
        read_bologna_challenge(path)

    path = tmp_path / "nocsv.tar.gz"
    _write_challenge(path, with_csv=False)
    with pytest.raises(RealDataError, match="no classifications.csv"):
        read_bologna_challenge(path)

    path = tmp_path / "filter.tar.gz"
    _write_challenge(path, wrong_filter=True)
    with pytest.raises(RealDataError, match="filter Z in Band2, expected I"):
        read_bologna_challenge(path)

    path = tmp_path / "col.tar.gz"
    _write_challenge(path)
    with pytest.raises(RealDataError, match="n_source_im"):
        read_bologna_challenge(path, label_column="n_source_im")

    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball at all")
    with pytest.raises(RealDataError, match=r"bad\.tar\.gz"):
        read_bologna_challenge(bad)
