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
