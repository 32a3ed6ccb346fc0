"""The training recipes, by name: each module defines one :class:`herbi.train.recipe.Recipe`."""

from herbi.train.recipes import fast, reference

RECIPES = {r.name: r for r in (reference.RECIPE, fast.RECIPE)}
