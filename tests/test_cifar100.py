"""The real CIFAR-100 loader on small archives built in the exact official format."""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile

import numpy as np
import pytest
from cifar100_archive import build_archive

from herbi.common.errors import DataError
from herbi.runtime.image import to_rgb_array
from herbi.train.cifar100 import OFFICIAL, download, load_cifar100
from herbi.train.data import load_dataset


@pytest.fixture()
def camel(cifar100_samples):
    return to_rgb_array(cifar100_samples / "cifar100_06_15.png")


def test_loads_coarse_11_with_labels_counts_and_pixels(tmp_path, camel):
    spec = build_archive(tmp_path / "c.tar.gz", camel=camel)
    x_tr, y_tr, x_te, y_te, names = load_cifar100(tmp_path / "c.tar.gz", 11, spec)
    assert names == ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"]
    assert x_tr.shape == (20, 32, 32, 3) and x_tr.dtype == np.uint8
    assert x_te.shape == (10, 32, 32, 3)
    assert np.bincount(y_tr).tolist() == [4] * 5 and np.bincount(y_te).tolist() == [2] * 5
    # The real CIFAR-100 camel (test image 06, fine label 15) comes back as label 0, pixel-exact.
    matches = [i for i in range(len(x_tr)) if np.array_equal(x_tr[i], camel)]
    assert len(matches) == 1 and y_tr[matches[0]] == 0


def test_other_coarse_class_is_a_parameter(tmp_path):
    spec = build_archive(tmp_path / "c.tar.gz")
    spec = type(spec)(**{**spec.__dict__, "train_per_class": 3, "test_per_class": 3})
    _, y, _, _, names = load_cifar100(tmp_path / "c.tar.gz", coarse=4, spec=spec)
    assert names == ["apple"] and len(y) == 3
    with pytest.raises(DataError, match="coarse classes 0-19"):
        load_cifar100(tmp_path / "c.tar.gz", coarse=20, spec=spec)


def test_wrong_counts_are_refused(tmp_path):
    spec = build_archive(tmp_path / "c.tar.gz", train_per_class=3)
    spec = type(spec)(**{**spec.__dict__, "train_per_class": 500})
    with pytest.raises(DataError, match="expected 500 images per class"):
        load_cifar100(tmp_path / "c.tar.gz", 11, spec)


def test_official_md5_refuses_another_archive(tmp_path):
    build_archive(tmp_path / "c.tar.gz")
    with pytest.raises(DataError, match="MD5 does not match"):
        load_cifar100(tmp_path / "c.tar.gz", 11, OFFICIAL)


def test_member_md5_checked_before_unpickling(tmp_path):
    spec = build_archive(tmp_path / "c.tar.gz")
    bad = type(spec)(**{**spec.__dict__, "member_md5": {**spec.member_md5, "train": "0" * 32}})
    with pytest.raises(DataError, match="'train' has the wrong MD5"):
        load_cifar100(tmp_path / "c.tar.gz", 11, bad)


def test_traversal_member_refused(tmp_path):
    evil = tarfile.TarInfo("../evil.txt")
    evil.size = 4
    spec = build_archive(tmp_path / "c.tar.gz", extra=[(evil, b"evil")])
    with pytest.raises(DataError, match="unsafe archive member"):
        load_cifar100(tmp_path / "c.tar.gz", 11, spec)
    assert not (tmp_path / "evil.txt").exists()


def test_link_out_of_archive_refused(tmp_path):
    link = tarfile.TarInfo("cifar-100-python/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    spec = build_archive(tmp_path / "c.tar.gz", extra=[(link, None)])
    with pytest.raises(DataError, match="unsafe archive member"):
        load_cifar100(tmp_path / "c.tar.gz", 11, spec)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_calls_a_function_is_refused(tmp_path):
    spec = build_archive(
        tmp_path / "c.tar.gz", members={"meta": pickle.dumps(_Exploit(), protocol=2)}
    )
    with pytest.raises(DataError, match=r"meta: refused to unpickle: .*system"):
        load_cifar100(tmp_path / "c.tar.gz", 11, spec)


def test_truncated_archive_refused(tmp_path):
    build_archive(tmp_path / "c.tar.gz")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes((tmp_path / "c.tar.gz").read_bytes()[:2000])
    spec = build_archive(tmp_path / "again.tar.gz")
    spec = type(spec)(**{**spec.__dict__, "archive_md5": hashlib.md5(cut.read_bytes()).hexdigest()})
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_cifar100(cut, 11, spec)


def test_extracted_folder_and_tarball_folder(tmp_path):
    spec = build_archive(tmp_path / "c.tar.gz")
    with tarfile.open(tmp_path / "c.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    (tmp_path / "dl").mkdir()
    (tmp_path / "c.tar.gz").rename(tmp_path / "dl" / "cifar-100-python.tar.gz")
    ref = load_cifar100(tmp_path / "dl", 11, spec)  # a folder holding the tarball
    for source in (tmp_path / "x", tmp_path / "x" / "cifar-100-python"):
        got = load_cifar100(source, 11, spec)
        for u, v in zip(got[:4], ref[:4], strict=True):
            np.testing.assert_array_equal(u, v)
        assert got[4] == ref[4]


def test_download_caches_and_verifies(tmp_path, monkeypatch):
    spec = build_archive(tmp_path / "src.tar.gz")
    monkeypatch.setenv("HERBI_DATA_DIR", str(tmp_path / "cache"))
    path = download(spec)
    assert path == tmp_path / "cache" / "cifar-100-python.tar.gz"
    assert path.read_bytes() == (tmp_path / "src.tar.gz").read_bytes()
    mtime = path.stat().st_mtime_ns
    assert download(spec) == path and path.stat().st_mtime_ns == mtime  # cached, not fetched again
    ds = load_dataset(None, val_fraction=0.25, seed=0, spec=spec)
    assert ds.class_names[0] == "camel" and len(ds.y_val) == 5


def test_download_failure_says_how_to_pass_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HERBI_DATA_DIR", str(tmp_path / "cache"))
    spec = type(OFFICIAL)(url="http://127.0.0.1:9/cifar-100-python.tar.gz")
    with pytest.raises(DataError, match=r"cannot download CIFAR-100 .*DATA="):
        download(spec)
    assert not any((tmp_path / "cache").glob("*"))  # no partial file left behind


def test_download_with_wrong_md5_leaves_nothing(tmp_path, monkeypatch):
    spec = build_archive(tmp_path / "src.tar.gz")
    monkeypatch.setenv("HERBI_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="wrong MD5"):
        download(type(spec)(url=spec.url))
    assert not any((tmp_path / "cache").glob("*"))
