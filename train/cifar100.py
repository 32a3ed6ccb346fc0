"""CIFAR-100, one coarse class at a time, from the official archive and nothing else.

``source`` is ``None`` (download into ``$HERBI_DATA_DIR``, default ``~/.cache/herbi``), the
tarball, or a folder holding it or its extracted members. Nothing is trusted before it is
checked: the archive's and each member's MD5 are verified before anything is unpickled, unsafe
tar members (absolute paths, ``..``, links leading out) are refused by the ``tarfile`` data
filter, and the unpickler admits only plain containers, bytes, str, numbers and numpy arrays.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import click
import numpy as np

from herbi.common.errors import DataError

URL = os.environ.get(
    "HERBI_CIFAR100_URL", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
)
ARCHIVE_NAME = "cifar-100-python.tar.gz"
MEMBERS = ("train", "test", "meta")


@dataclass(frozen=True)
class Cifar100Spec:
    """What a genuine archive looks like: checksums and per-class counts.

    The defaults are the official CIFAR-100 release; tests build small archives in the same
    format and describe them with their own spec.
    """

    url: str = URL
    archive_md5: str = "eb9058c3a382ffc7106e4002c42a8d85"
    member_md5: dict[str, str] = field(
        default_factory=lambda: {
            "train": "16019d7e3df5f24257cddd939b257f8d",
            "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
            "meta": "7973b15100ade9c7d40fb424638fde48",
        }
    )
    train_per_class: int = 500
    test_per_class: int = 100


OFFICIAL = Cifar100Spec()


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _SafeUnpickler(pickle.Unpickler):
    """Admit what CIFAR's pickles hold (containers, bytes, str, numbers, numpy arrays) only."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks to load {module}.{name}, which is not data")


def safe_unpickle(data: bytes, name: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{name}: refused to unpickle: {e}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{name}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def download(spec: Cifar100Spec = OFFICIAL) -> Path:
    """Fetch the archive into the cache (once), verify its MD5, and return its path."""
    dest_dir = Path(os.environ.get("HERBI_DATA_DIR") or Path.home() / ".cache" / "herbi")
    target = dest_dir / ARCHIVE_NAME
    if target.is_file() and md5_file(target) == spec.archive_md5:
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(spec.url, timeout=30) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with click.progressbar(length=total, label=f"Downloading {ARCHIVE_NAME}") as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except OSError as e:
        part.unlink(missing_ok=True)
        raise DataError(
            f"cannot download CIFAR-100 from {spec.url} ({getattr(e, 'reason', e)}); "
            f"without network, pass the tarball or an image folder instead: "
            f"--data /path/to/{ARCHIVE_NAME} (make train DATA=...)"
        ) from None
    if md5_file(part) != spec.archive_md5:
        part.unlink(missing_ok=True)
        raise DataError(f"{spec.url}: downloaded file has the wrong MD5; try again")
    part.replace(target)
    return target


def _read_tar_members(path: Path, spec: Cifar100Spec) -> dict[str, bytes]:
    if md5_file(path) != spec.archive_md5:
        raise DataError(
            f"{path}: MD5 does not match the official {ARCHIVE_NAME} "
            f"({spec.archive_md5}); the file is damaged or not CIFAR-100"
        )
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                try:
                    tarfile.data_filter(member, str(path.parent / "_extract"))
                except tarfile.FilterError as e:
                    raise DataError(f"{path}: unsafe archive member refused: {e}") from None
                base = Path(member.name)
                wanted = base.parent.name == "cifar-100-python" and base.name in MEMBERS
                if member.isfile() and wanted:
                    found[base.name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{path}: archive is truncated or corrupt ({e})") from None
    return found


def read_members(source: Path, spec: Cifar100Spec = OFFICIAL) -> dict[str, bytes]:
    """Return the verified bytes of ``train``, ``test`` and ``meta`` from a tarball or folder."""
    if source.is_dir():
        if (source / ARCHIVE_NAME).is_file():
            return read_members(source / ARCHIVE_NAME, spec)
        inner = source / "cifar-100-python"
        folder = inner if inner.is_dir() else source
        members = {m: (folder / m).read_bytes() for m in MEMBERS if (folder / m).is_file()}
    else:
        members = _read_tar_members(source, spec)
    missing = [m for m in MEMBERS if m not in members]
    if missing:
        raise DataError(f"{source}: not a CIFAR-100 archive (missing {', '.join(missing)})")
    for name, data in members.items():
        if hashlib.md5(data, usedforsecurity=False).hexdigest() != spec.member_md5[name]:
            raise DataError(f"{source}: member {name!r} has the wrong MD5; refusing to unpickle it")
    return members


def _select(batch: dict, fine_ids: list[int], per_class: int, name: str):
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        fine = np.asarray(batch[b"fine_labels"], dtype=np.int64)
    except KeyError as e:
        raise DataError(f"{name}: missing key {e}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(fine):
        raise DataError(f"{name}: data has shape {data.shape}, expected (N, 3072)")
    mask = np.isin(fine, fine_ids)
    x = data[mask].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    y = np.searchsorted(np.asarray(fine_ids), fine[mask])
    counts = np.bincount(y, minlength=len(fine_ids))
    if not np.all(counts == per_class):
        raise DataError(f"{name}: expected {per_class} images per class, found {counts.tolist()}")
    return np.ascontiguousarray(x), y


def load_cifar100(
    source: Path | str | None = None, coarse: int = 11, spec: Cifar100Spec = OFFICIAL
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Return ``x_train, y_train, x_test, y_test, class_names`` for one coarse class."""
    if not 0 <= coarse < 20:
        raise DataError(f"--coarse {coarse}: CIFAR-100 has coarse classes 0-19")
    path = download(spec) if source is None else Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    members = read_members(path, spec)
    meta, train, test = (safe_unpickle(members[m], m) for m in ("meta", "train", "test"))
    try:
        fine_names = [n.decode() for n in meta[b"fine_label_names"]]
        coarse_labels = np.asarray(train[b"coarse_labels"])
        fine_labels = np.asarray(train[b"fine_labels"])
    except (KeyError, AttributeError) as e:
        raise DataError(f"{path}: malformed CIFAR-100 pickle ({e})") from None
    # Fine classes of this superclass, in label order, which is alphabetical in CIFAR-100.
    fine_ids = sorted(set(fine_labels[coarse_labels == coarse].tolist()))
    if not fine_ids:
        raise DataError(f"{path}: no images of coarse class {coarse}")
    x_train, y_train = _select(train, fine_ids, spec.train_per_class, "train")
    x_test, y_test = _select(test, fine_ids, spec.test_per_class, "test")
    return x_train, y_train, x_test, y_test, [fine_names[i] for i in fine_ids]
