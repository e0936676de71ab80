"""Sets generated on the fly, seeded by the split: two moons, a 1-D gap regression, and MNIST-1D.

* ``moons``: two interleaving half circles (classification).
* ``gap``: 1-D regression with a hole in the training inputs, for in-between
  uncertainty (Foong et al. 2019).
* ``mnist1d`` (Greydanus 2020): generated offline by the ``mnist1d`` package,
  imported on first use.
"""
from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np

from bayesjax.data.dataset import Arrays

__all__ = ["gap", "mnist1d", "moons", "sample_moons"]

MOONS_SIZE = 1000
MOONS_NOISE = 0.15
GAP_SIZE = 500
GAP_NOISE = 0.1


def sample_moons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws ``n`` points of the two-moons problem, half from each moon, with isotropic Gaussian noise.

    The upper moon (label 0) is ``(cos t, sin t)``, the lower (label 1)
    ``(1 - cos t, 1/2 - sin t)``, with ``t ~ U(0, pi)`` and noise of standard
    deviation 0.15 added to both coordinates; the labels are a random
    permutation of ``0, 1, 0, 1, ...``.

    Args:
        rng: the NumPy generator to draw from.
        n: number of points.

    Returns:
        ``(x, y)``: float64 points ``[n, 2]`` and int labels ``[n]``.

    Example:
        >>> import numpy as np
        >>> from bayesjax.data import sample_moons
        >>> x, y = sample_moons(np.random.default_rng(0), 10)
        >>> x.shape, np.bincount(y).tolist()
        ((10, 2), [5, 5])
    """
    y = rng.permutation(np.arange(n) % 2)
    t = rng.uniform(0.0, np.pi, n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where(y[:, None] == 0, upper, lower)
    return x + MOONS_NOISE * rng.standard_normal((n, 2)), y


def moons(split: int, root, test_fraction: float) -> Arrays:
    """Two interleaving half circles: 1,000 points, noise 0.15, classes balanced in both splits."""
    rng = np.random.default_rng(split)
    n_test = round(MOONS_SIZE * test_fraction)
    return (*sample_moons(rng, MOONS_SIZE - n_test), *sample_moons(rng, n_test))


def gap(split: int, root, test_fraction: float) -> Arrays:
    """``y = sin(3x) + N(0, 0.1^2)``: 500 points, training ``x`` in [-1, -0.3] U [0.3, 1], test ``x`` in [-1, 1]."""
    rng = np.random.default_rng(split)
    n_test = round(GAP_SIZE * test_fraction)
    n_train = GAP_SIZE - n_test
    x_train = rng.choice([-1.0, 1.0], n_train) * rng.uniform(0.3, 1.0, n_train)
    x_test = rng.uniform(-1.0, 1.0, n_test)
    y_train, y_test = (np.sin(3.0 * x) + GAP_NOISE * rng.standard_normal(x.shape) for x in (x_train, x_test))
    return x_train[:, None], y_train, x_test[:, None], y_test


@contextlib.contextmanager
def _global_rng_kept() -> Iterator[None]:
    """Restores Python's and NumPy's global random states on exit."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def mnist1d(split: int, root, test_fraction: float) -> Arrays:
    """Generates MNIST-1D offline: 5,000 signals of length 40, seed ``42 + split``.

    Split 0 uses the package's default arguments (seed 42). The package seeds
    the global random generators; their states are restored afterwards.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError("mnist1d needs the mnist1d package: pip install 'bayesjax[mnist1d]'") from error
    args = get_dataset_args()
    args.seed = 42 + split
    args.train_split = 1.0 - test_fraction
    with _global_rng_kept():
        generated = make_dataset(args)
    return generated["x"], generated["y"], generated["x_test"], generated["y_test"]
