"""Comparisons of arrays and parameter trees in float64 NumPy."""
import jax
import numpy as np


def rel_err(a, b):
    """``max |a - b| / max |b|``, in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def flat(tree):
    """``ravel_pytree`` order, in NumPy (keeps float64 outside ``enable_x64``)."""
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(tree)])


def flat_rows(tree):
    """Leaves with a leading axis S -> ``[S, D]`` in ``ravel_pytree`` order."""
    leaves = jax.tree.leaves(tree)
    return np.concatenate([np.asarray(leaf).reshape(leaves[0].shape[0], -1) for leaf in leaves], axis=1)
