"""The image-folder loader, splits, fingerprint and reference augmentation on real images."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from herbi.common.errors import DataError
from herbi.runtime.image import to_rgb_array
from herbi.train.data import load_dataset


def small_copy(src, dst, per_class=3, test_per_class=2):
    """A few real stand-in images per class, copied so tests can damage them."""
    for split, n in (("train", per_class), ("test", test_per_class)):
        for cls in sorted((src / split).iterdir()):
            (dst / split / cls.name).mkdir(parents=True)
            for f in sorted(cls.iterdir())[:n]:
                shutil.copy(f, dst / split / cls.name / f.name)
    return dst


@pytest.fixture(scope="module")
def stand_in(animals5):
    """The stand-in loaded once for this module, with the default split (seed 0)."""
    return load_dataset(animals5, val_fraction=0.1, seed=0)


def test_stand_in_counts_classes_and_disjoint_splits(stand_in):
    ds = stand_in
    assert ds.class_names == ["bird", "cat", "deer", "dog", "horse"]
    assert ds.x_train.shape == (2250, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.counts() == {
        "train": dict.fromkeys(ds.class_names, 450),
        "val": dict.fromkeys(ds.class_names, 50),
        "test": dict.fromkeys(ds.class_names, 100),
    }
    train_rows = {img.tobytes() for img in ds.x_train}
    assert not any(img.tobytes() in train_rows for img in ds.x_val)


def test_split_is_seeded_and_fingerprinted(animals5, stand_in):
    a, b = stand_in, load_dataset(animals5, seed=0)
    c = load_dataset(animals5, seed=1)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    np.testing.assert_array_equal(a.y_val, b.y_val)


def test_any_mode_and_size_becomes_32x32_rgb(tmp_path, animals5):
    root = small_copy(animals5, tmp_path / "d", per_class=3, test_per_class=1)
    odd = root / "train" / "cat"
    Image.new("L", (300, 200), 128).save(odd / "gray.png")
    Image.new("RGBA", (64, 64), (10, 20, 30, 0)).save(odd / "rgba.png")
    Image.new("P", (33, 31)).save(odd / "palette.bmp")
    Image.new("RGB", (1, 1), (200, 0, 0)).save(odd / "tiny.webp")
    ds = load_dataset(root, val_fraction=0.4)
    assert len(ds.x_train) + len(ds.x_val) == 19 and ds.x_train.shape[1:] == (32, 32, 3)
    assert to_rgb_array(odd / "tiny.webp").shape == (32, 32, 3)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: shutil.rmtree(r / "test"), r"test: missing folder"),
        (
            lambda r: [f.unlink() for f in (r / "train" / "dog").iterdir()],
            r"dog: class folder has no images",
        ),
        (
            lambda r: (r / "train" / "cat" / "bad.jpg").write_text("not an image"),
            r"unreadable image .*bad\.jpg",
        ),
        (
            lambda r: (
                (r / "test" / "zebra").mkdir()
                or shutil.copy(next((r / "test" / "cat").iterdir()), r / "test" / "zebra" / "z.jpg")
            ),
            r"\['zebra'\] are not in",
        ),
    ],
    ids=["missing-test", "empty-class", "unreadable-file", "class-only-in-test"],
)
def test_folder_errors_name_the_culprit(tmp_path, animals5, damage, message):
    root = small_copy(animals5, tmp_path / "d")
    damage(root)
    with pytest.raises(DataError, match=message):
        load_dataset(root, val_fraction=0.2)


def test_missing_source_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: no such file or folder"):
        load_dataset(tmp_path / "nowhere")


def test_reference_augmentation_triples_and_is_seeded(stand_in):
    from herbi.train.recipes.reference import offline_augment

    x, y = stand_in.x_train[:40], stand_in.y_train[:40]
    xa, ya = offline_augment(x, y, copies=2, seed=3)
    xb, _ = offline_augment(x, y, copies=2, seed=3)
    assert xa.shape == (120, 32, 32, 3) and xa.dtype == np.float32
    assert xa.min() >= 0.0 and xa.max() <= 1.0
    assert np.bincount(ya).tolist() == (np.bincount(y) * 3).tolist()
    np.testing.assert_array_equal(xa, xb)
    # The originals are in there unchanged; the copies are not identical to them.
    originals = {(x[i].astype(np.float32) / 255.0).tobytes() for i in range(len(x))}
    assert sum(img.tobytes() in originals for img in xa) == 40
