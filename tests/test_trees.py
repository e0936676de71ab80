"""Pytree utilities (bayesjax/trees.py)."""
import jax
import jax.numpy as jnp

from bayesjax import trees

TREE = {"a": jnp.ones((2, 3)), "b": [jnp.zeros(4), jax.ShapeDtypeStruct((5,), jnp.float32)]}


def test_num_params_counts_every_entry_of_arrays_and_shapes():
    assert trees.num_params(TREE) == 6 + 4 + 5


def test_repeat_params_stacks_copies_on_a_new_axis():
    stacked = trees.repeat_params({"a": jnp.arange(3.0)}, 4)
    assert stacked["a"].shape == (4, 3) and bool(jnp.all(stacked["a"] == jnp.arange(3.0)))


def test_all_finite_sees_one_bad_entry_in_any_leaf():
    good = {"a": jnp.ones(3), "b": jnp.zeros((2, 2))}
    assert bool(trees.all_finite(good))
    assert not bool(trees.all_finite(good | {"b": jnp.array([[0.0, jnp.nan], [0.0, 0.0]])}))
    assert not bool(trees.all_finite(good | {"a": jnp.array([1.0, jnp.inf, 0.0])}))
