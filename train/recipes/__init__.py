"""Training recipes: each is one module with its hyperparameters in one dict and its stages.

A recipe module exposes ``NAME``, ``HPARAMS`` (one commented dict), ``PRESETS`` (epochs per
stage and data limits for ``reference`` / ``cpu`` / ``smoke``) and ``plan_stage(...)``, which
returns the compiled model and the training data of one stage; ``herbi.train.trainer`` runs
the stages, keeps the best checkpoints and writes the run folder.
"""

from herbi.train.recipes import fast, reference

RECIPES = {reference.NAME: reference, fast.NAME: fast}
