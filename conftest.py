"""Session set-up for the tests and the docstring examples (``pytest --doctest-modules bayesjax``).

Forces 4 CPU devices before JAX is first imported, so sharding runs on a CPU
machine (pytest loads this file before any test module or ``tests/conftest.py``).

The docstring examples share one small standard problem, built once per
session: a 10-class MLP on 200 training digits. Names an example may use
without defining them:

- ``bj``, ``jax``, ``jnp``, ``np``, ``optax``, ``nn`` (``flax.linen``);
- ``key``: ``jax.random.key(0)``;
- ``ds``: ``bj.data.load("digits")`` cut to 200 training and 100 test examples;
  ``x_train, y_train, x_test, y_test`` its arrays, ``x, y`` the training pair,
  ``n = len(x)``;
- ``model``: ``bj.models.mlp([16], num_outputs=10)``, ``params`` its initial
  parameters;
- ``lj``: categorical likelihood, ``gaussian(1.0)`` prior, ``num_data=n``;
- ``params_map``: ``params`` after 100 full-batch Adam steps on ``lj``;
- ``linear_x``, ``linear_lj``, ``linear_post``: four SGLD chains (60 steps,
  burn-in 20) on a 3-weight linear regression, the run the diagnostics read.
"""
import os

import pytest

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import flax.linen as nn  # noqa: E402 (after XLA_FLAGS)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import bayesjax as bj  # noqa: E402

NUM_TRAIN, NUM_TEST, MAP_STEPS = 200, 100, 100


def fit_map(lj: bj.LogJoint, params, data):
    """``params`` after ``MAP_STEPS`` full-batch Adam steps maximizing ``lj``."""
    optimizer = optax.adam(1e-2)

    def step(carry, _):
        params, opt_state = carry
        grads = jax.grad(lambda p: -lj(p, data))(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), length=MAP_STEPS)
    return params


@pytest.fixture(scope="session")
def doctest_namespace(doctest_namespace):
    """pytest's doctest globals plus the standard problem of the module docstring."""
    full = bj.data.load("digits")
    ds = full._replace(x_train=full.x_train[:NUM_TRAIN], y_train=full.y_train[:NUM_TRAIN],
                       x_test=full.x_test[:NUM_TEST], y_test=full.y_test[:NUM_TEST])
    key = jax.random.key(0)
    model = bj.models.mlp([16], num_outputs=10)
    params = model.init(key, ds.x_train[:1])
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=NUM_TRAIN)
    doctest_namespace.update(
        bj=bj, jax=jax, jnp=jnp, np=np, optax=optax, nn=nn, key=key, ds=ds,
        x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test,
        x=ds.x_train, y=ds.y_train, n=NUM_TRAIN, model=model, params=params, lj=lj,
        params_map=fit_map(lj, params, (ds.x_train, ds.y_train)), **linear_chains())
    return doctest_namespace


def linear_chains() -> dict:
    """Four SGLD chains on a 3-weight linear regression, the run the diagnostics' examples read."""
    linear_x = jax.random.normal(jax.random.key(0), (32, 3))
    linear_lj = bj.log_joint(lambda p, x: x @ p["w"], bj.priors.gaussian(1.0), bj.likelihoods.gaussian(0.5),
                             num_data=32)
    linear_post = bj.run(jax.random.key(1), bj.sgld(linear_lj, 1e-3), {"w": jnp.zeros((3, 1))},
                         (linear_x, linear_x[:, 0]), num_steps=60, num_chains=4, burnin=20, progress=False)
    return dict(linear_x=linear_x, linear_lj=linear_lj, linear_post=linear_post)


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
    """Frees each test module's compiled programs when it ends.

    A worker process that held every XLA executable of the suite crossed the
    kernel's limit of 65,530 memory mappings and crashed inside XLA's
    compiler (a segmentation fault, late in the run); programs shared across
    modules compile once per module instead.
    """
    yield
    jax.clear_caches()
