"""``CompareConfig``: the budget overrides."""
from bayesjax.experiments import compare


def test_overrides_replace_every_budget_but_posthoc_steps():
    config = compare.CompareConfig(steps=7, samples=3)
    assert config.budget("sgld") == compare.Budget(7, compare.METHODS["sgld"].budget.members, 3)
    assert config.budget("laplace_kfac").steps is None
