"""Posteriors of the toy chains, run once for the whole diagnostics test package."""
import warnings

import jax
import jax.numpy as jnp
import pytest

from tests.diagnostics.toy_chains import ar1, iid, run, toy_chain


@pytest.fixture(scope="package")
def iid_posterior():
    return run(iid())


@pytest.fixture(scope="package")
def counter_posterior():
    """Positions record their step t; 40 steps, burn-in 10, thin 2: 15 kept, the last 8 buffered."""
    counter = toy_chain(lambda key, state, t: {"t": t.astype(jnp.float32), "w": jax.random.normal(key, (30,))})
    return run(counter, {"t": jnp.zeros(()), "w": jnp.zeros(30)}, num_steps=40, burnin=10, thin=2, num_samples=8)


@pytest.fixture(scope="package")
def ar1_posterior():
    """AR(1) chains with rho = 0.9 from a stationary start, 4 x 5000 draws of 8 elements."""
    return run(ar1(0.9), lambda key: {"w": jax.random.normal(key, (8,))}, num_steps=5000)


@pytest.fixture(scope="package")
def arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # arviz 0.2x announces its 1.0 refactor
        return pytest.importorskip("arviz", reason="arviz is the reference implementation: pip install 'bayesjax[arviz]'")
