"""``setup``: which methods the model allows; the validation split held out of the training split."""
import jax
import numpy as np
import pytest

from bayesjax import data
from bayesjax.experiments import compare
from bayesjax.experiments.validation import hold_out


def test_default_methods_leave_out_hmc_above_the_size_limit():
    problem, names, skipped = compare.setup(compare.CompareConfig(hidden=(200, 200)))
    assert problem.num_params > compare.HMC_MAX_PARAMS
    assert "hmc" not in names and "weights" in skipped["hmc"]
    assert names == [n for n in compare.METHODS if n != "hmc"]
    _, names, skipped = compare.setup(compare.CompareConfig(model="cnn", hmc_max_params=10**6))
    assert "laplace_kfac" in names and "hmc" in names


def rows(x):
    return {row.tobytes() for row in x.reshape(len(x), -1)}


def test_the_validation_split_is_held_out_of_training_and_fixed_by_the_seed():
    full = data.load("iris")
    problem, _, _ = compare.setup(compare.CompareConfig(dataset="iris", validation_fraction=0.2))
    (x_val, y_val), rest = problem.validation, problem.dataset
    assert len(y_val) == round(0.2 * len(full.y_train)) and len(rest.y_train) + len(y_val) == len(full.y_train)
    assert not rows(x_val) & rows(rest.x_train)  # methods train on the rest only
    assert rows(x_val) | rows(rest.x_train) == rows(full.x_train)
    assert problem.log_joint.num_data == len(rest.y_train) and problem.data[0] is rest.x_train
    assert problem.config.laplace_prior == "validation"
    again, _, _ = compare.setup(compare.CompareConfig(dataset="iris", validation_fraction=0.2))
    other, _, _ = compare.setup(compare.CompareConfig(dataset="iris", validation_fraction=0.2, seed=1))
    np.testing.assert_array_equal(again.validation[0], x_val)
    assert rows(other.validation[0]) != rows(x_val)
    # The methods' keys do not depend on whether a validation split is drawn.
    off, _, _ = compare.setup(compare.CompareConfig(dataset="iris", validation_fraction=0))
    assert off.validation is None and off.config.laplace_prior == "untuned"
    assert len(off.dataset.y_train) == len(full.y_train)
    np.testing.assert_array_equal(jax.random.key_data(off.key), jax.random.key_data(problem.key))


def test_a_split_leaving_either_part_empty_is_refused():
    tiny = data.load("iris")._replace(x_train=np.zeros((3, 4)), y_train=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="leaves 0 for validation"):
        hold_out(tiny, 0.1, jax.random.key(0))
    assert len(hold_out(tiny, 0.5, jax.random.key(0))[1][1]) == 2
