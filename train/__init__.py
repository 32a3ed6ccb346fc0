"""herbi.train: datasets, the reference CNN and its recipes, and the ``herbi-train`` command."""

from herbi.common.legacy_keras import use_legacy_keras

use_legacy_keras()
