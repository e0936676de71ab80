"""``CompareConfig``: the budget overrides, the validation split and the Laplace prior's tuning."""
import pytest

from bayesjax.experiments import compare


def test_overrides_replace_every_budget_but_posthoc_steps():
    config = compare.CompareConfig(steps=7, samples=3)
    assert config.budget("sgld") == compare.Budget(7, compare.METHODS["sgld"].budget.members, 3)
    assert config.budget("laplace_kfac").steps is None


@pytest.mark.parametrize("settings, message", [
    (dict(validation_fraction=1.0), "validation_fraction must be a number in \\[0, 1\\)"),
    (dict(validation_fraction=-0.1), "validation_fraction"),
    (dict(validation_fraction=float("nan")), "validation_fraction"),
    (dict(laplace_prior="marglik"), "laplace_prior must be one of"),
    (dict(validation_fraction=0, laplace_prior="validation"), "needs a validation split"),
])
def test_bad_validation_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        compare.CompareConfig(**settings).validate()
    compare.CompareConfig(validation_fraction=0, laplace_prior="evidence").validate()
