"""``SweepConfig``: every sweep method is a choice; bad settings are refused before anything runs."""
import dataclasses

import pytest

from bayesjax.experiments import sweep
from tests.experiments.sweep.tiny_grid import CONFIG


def test_every_method_is_a_choice_and_bad_laplace_predictives_are_refused():
    assert {"sgld", "sghmc", "cyclical_sgld", "meanfield_vi", "laplace_diag", "laplace_kfac",
            "laplace_last_layer"} <= set(sweep.METHODS)
    for method in sweep.METHODS:
        dataclasses.replace(CONFIG, method=method).validate()
    with pytest.raises(ValueError, match="laplace_predictive"):
        dataclasses.replace(CONFIG, method="laplace_diag", laplace_predictive="exact").validate()


def test_a_chain_sweep_that_would_keep_no_position_is_refused():
    with pytest.raises(ValueError, match="no position would be kept"):
        dataclasses.replace(CONFIG, num_steps=40, burnin=20, thin=50).validate()
    dataclasses.replace(CONFIG, method="meanfield_vi", num_steps=40, burnin=20, thin=50).validate()  # no chains


def test_cycles_counted_in_epochs_or_per_run():
    assert CONFIG.cycles(num_data=1000) == (CONFIG.num_cycles, -(-CONFIG.num_steps // CONFIG.num_cycles))
    by_epochs = dataclasses.replace(CONFIG, method="cyclical_sghmc", num_steps=600, batch_size=100, epochs_per_cycle=2)
    assert by_epochs.validate().cycles(num_data=1000) == (30, 20)  # 10 steps per epoch: cycles of 20 steps
    with pytest.raises(ValueError, match="more than num_steps"):
        dataclasses.replace(by_epochs, epochs_per_cycle=100).cycles(num_data=1000)
    with pytest.raises(ValueError, match="cyclical"):
        dataclasses.replace(CONFIG, epochs_per_cycle=2).validate()


def test_priors_are_choices_and_laplace_needs_a_gaussian_one():
    for prior in ("isotropic", "gaussian", "laplace", "student_t"):
        dataclasses.replace(CONFIG, prior=prior).validate()
    dataclasses.replace(CONFIG, method="laplace_diag", prior="gaussian").validate()
    with pytest.raises(ValueError, match="Gaussian prior"):
        dataclasses.replace(CONFIG, method="laplace_diag", prior="student_t").validate()
    with pytest.raises(ValueError, match="prior must be one of"):
        dataclasses.replace(CONFIG, prior="horseshoe").validate()


def test_the_layerwise_preconditioner_is_sghmcs():
    dataclasses.replace(CONFIG, method="cyclical_sghmc", layerwise_preconditioner=True).validate()
    with pytest.raises(ValueError, match="layerwise preconditioner"):
        dataclasses.replace(CONFIG, method="sgld", layerwise_preconditioner=True).validate()


def test_the_laplace_prior_is_a_choice_of_the_laplace_methods():
    for laplace_prior in ("untuned", "evidence", "validation"):
        dataclasses.replace(CONFIG, method="laplace_kfac", laplace_prior=laplace_prior).validate()
    dataclasses.replace(CONFIG, method="laplace_diag", validation_fraction=0).validate()  # untuned: no split
    laplace = dataclasses.replace(CONFIG, method="laplace_diag", laplace_prior="validation")
    for bad, message in ((dict(laplace_prior="marglik"), "laplace_prior must be one of"),
                         (dict(laplace_prior=None), "laplace_prior must be one of"),
                         (dict(validation_fraction=1), r"validation_fraction must be a number in \[0, 1\), got 1"),
                         (dict(validation_fraction=0), "laplace_prior='validation' needs a validation split")):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(laplace, **bad).validate()
    with pytest.raises(ValueError, match=r"laplace_prior='evidence' applies to the Laplace methods \(laplace_diag"):
        dataclasses.replace(CONFIG, laplace_prior="evidence").validate()  # sgld


def test_the_fraction_enters_the_fingerprint_only_when_it_holds_examples_out():
    laplace = dataclasses.replace(CONFIG, method="laplace_diag")
    prints = {(prior, fraction): dataclasses.replace(laplace, laplace_prior=prior, validation_fraction=fraction)
              .fingerprint() for prior in ("untuned", "evidence", "validation") for fraction in (0.1, 0.2)}
    assert prints["untuned", 0.1] == prints["untuned", 0.2] and prints["evidence", 0.1] == prints["evidence", 0.2]
    assert len({prints["untuned", 0.1], prints["evidence", 0.1], prints["validation", 0.1],
                prints["validation", 0.2]}) == 4
