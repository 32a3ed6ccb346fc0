"""herbi.train: datasets, the reference CNN and its recipes, and the ``herbi-train`` command."""
