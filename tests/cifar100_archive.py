"""Build small archives in the exact official CIFAR-100 python format, for the loader tests.

Same member names (``cifar-100-python/{train,test,meta}``), pickled dicts with the official
bytes keys, uint8 ``(N, 3072)`` planar RGB data, Python-2-era pickle protocol 2. The camel
images include the real CIFAR-100 test image 06 (fine label 15) when it is available.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from herbi.train.cifar100 import Cifar100Spec

FINE_NAMES = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
]
COARSE_NAMES = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
]
HERBIVORES = (15, 19, 21, 31, 38)  # coarse 11, in label order
DISTRACTOR = (0, 4)  # apple, coarse class fruit_and_vegetables


def planar(images: np.ndarray) -> np.ndarray:
    """NHWC uint8 -> CIFAR rows: 1024 red, then 1024 green, then 1024 blue values."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def make_batch(per_class: int, rng: np.random.Generator, label: bytes, camel=None):
    fine, coarse, images = [], [], []
    for f in HERBIVORES:
        fine += [f] * per_class
        coarse += [11] * per_class
        images.append(rng.integers(0, 256, (per_class, 32, 32, 3), dtype=np.uint8))
    fine += [DISTRACTOR[0]] * 3
    coarse += [DISTRACTOR[1]] * 3
    images.append(rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    x = np.concatenate(images)
    if camel is not None:
        x[0] = camel
    order = rng.permutation(len(x))
    return {
        b"batch_label": label,
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(x))],
        b"fine_labels": np.asarray(fine)[order].tolist(),
        b"coarse_labels": np.asarray(coarse)[order].tolist(),
        b"data": planar(x[order]),
    }


def build_archive(
    path: Path,
    train_per_class: int = 4,
    test_per_class: int = 2,
    camel: np.ndarray | None = None,
    members: dict[str, bytes] | None = None,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] = (),
) -> Cifar100Spec:
    """Write the archive to ``path`` and return the spec (checksums, counts) describing it."""
    rng = np.random.default_rng(0)
    meta = {
        b"fine_label_names": [n.encode() for n in FINE_NAMES],
        b"coarse_label_names": [n.encode() for n in COARSE_NAMES],
    }
    content = {
        "train": pickle.dumps(
            make_batch(train_per_class, rng, b"training batch 1 of 1", camel), protocol=2
        ),
        "test": pickle.dumps(make_batch(test_per_class, rng, b"testing batch 1 of 1"), protocol=2),
        "meta": pickle.dumps(meta, protocol=2),
        **(members or {}),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in content.items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    md5 = {k: hashlib.md5(v).hexdigest() for k, v in content.items()}
    return Cifar100Spec(
        url=path.resolve().as_uri(),
        archive_md5=hashlib.md5(path.read_bytes()).hexdigest(),
        member_md5=md5,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
    )
