"""The one method table: well-formed recipes, shared by the sweep and the comparison."""
from bayesjax.experiments import compare, recipes, sweep


def test_every_recipe_is_well_formed():
    for name, recipe in recipes.METHODS.items():
        assert recipe.kind in recipes.KINDS, name
        assert (recipe.kind == "laplace") == (recipe.laplace is not None), name
        assert recipe.requires is None or recipe.requires in recipes.METHODS, name
        assert (recipe.budget.steps is None) == (recipe.requires is not None), name


def test_sweep_and_compare_read_the_one_table():
    assert compare.METHODS is recipes.METHODS
    assert all(sweep.METHODS[name] is recipes.METHODS[name] for name in sweep.METHODS)
    assert {"map", "swag", "multiswag", "deep_ensemble", "hmc"}.isdisjoint(sweep.METHODS)


def test_the_help_table_lists_every_method():
    lines = recipes.describe_methods().splitlines()
    assert [line.split()[0] for line in lines[1:]] == list(recipes.METHODS)
