"""Chains and data over devices (4 forced CPU devices in the test session)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.driver.chunked import START
from bayesjax.driver.scan import RunConfig

pytestmark = pytest.mark.skipif(jax.device_count() < 4, reason="needs 4 devices: run with "
                                "XLA_FLAGS=--xla_force_host_platform_device_count=4 (make test does)")

MODEL = bj.models.mlp([8], num_outputs=3)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=64).astype(np.int32)
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=64,
                      temperature=0.3)
    return lj, MODEL.init(jax.random.key(0), x[:1]), (x, y)


def test_mesh_shape_and_errors():
    m = bj.sharding.mesh(chains=2, data=2)
    assert dict(m.shape) == {"chains": 2, "data": 2}
    assert dict(bj.sharding.mesh().shape) == {"chains": jax.device_count(), "data": 1}
    with pytest.raises(ValueError, match="devices"):
        bj.sharding.mesh(chains=8)


def test_sgld_chains_do_not_depend_on_the_device_count(problem):
    lj, params, data = problem
    algo = bj.sgld(lj, 0.064)
    results = []
    for devices in (1, 2, 4):
        mesh = bj.sharding.mesh(chains=devices)
        post = bj.run(jax.random.key(1), algo, params, data, num_steps=20, batch_size=16, num_chains=8, burnin=10,
                      progress=False, mesh=mesh)
        kernel = post.state.inner.position["Dense_0"]["kernel"]
        # The placement is real: the chain axis is split over the mesh after the steps.
        assert len(kernel.sharding.device_set) == devices
        if devices > 1:
            assert kernel.sharding.spec[0] == "chains"
        results.append((np.asarray(kernel), np.asarray(post.sample(jax.random.key(2), 8)["Dense_0"]["bias"])))
    for kernel, samples in results[1:]:
        np.testing.assert_allclose(kernel, results[0][0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(samples, results[0][1], rtol=1e-6, atol=1e-6)


def test_chains_must_divide_over_the_mesh(problem):
    lj, params, data = problem
    with pytest.raises(ValueError, match="multiple"):
        bj.run(jax.random.key(1), bj.sgld(lj, 0.064), params, data, num_steps=2, num_chains=3, progress=False,
               mesh=bj.sharding.mesh(chains=2))


def test_data_sharded_full_batch_gradient_equals_single_device(problem):
    lj, params, (x, y) = problem
    mesh = bj.sharding.mesh(chains=1, data=4)
    sharded = tuple(jax.device_put(a, bj.sharding.data_sharding(mesh)) for a in (x, y))
    grad = jax.jit(jax.grad(lj))
    expected = grad(params, (jnp.asarray(x), jnp.asarray(y)))
    got = grad(params, sharded)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert len(sharded[0].sharding.device_set) == 4


def test_full_batch_run_on_a_data_mesh(problem):
    lj, params, data = problem
    algo = bj.sgld(lj, 0.064)
    single = bj.run(jax.random.key(3), algo, params, data, num_steps=5, num_chains=2, progress=False)
    sharded = bj.run(jax.random.key(3), algo, params, data, num_steps=5, num_chains=2, progress=False,
                     mesh=bj.sharding.mesh(chains=2, data=2))
    np.testing.assert_allclose(sharded.state.inner.position["Dense_0"]["kernel"],
                               single.state.inner.position["Dense_0"]["kernel"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [None, 4, 3])
def test_predictive_reduces_sharded_samples_without_gathering_them(problem, chunk_size):
    lj, params, (x, _) = problem
    samples = jax.vmap(lambda k: MODEL.init(k, x[:1]))(jax.random.split(jax.random.key(2), 16))
    sharded = jax.device_put(samples, bj.sharding.chain_sharding(bj.sharding.mesh(chains=4)))
    predict = jax.jit(lambda s: bj.predictive(MODEL.apply, s, x, lj.likelihood, chunk_size=chunk_size).log_probs)
    if chunk_size == 3:  # outside jit the chunk is rounded up to a multiple of the 4 devices
        predict = lambda s: bj.predictive(MODEL.apply, s, x, lj.likelihood, chunk_size=3).log_probs
    else:
        assert "all-gather" not in predict.lower(sharded).compile().as_text()
    np.testing.assert_allclose(predict(sharded), predict(samples), rtol=1e-5, atol=1e-6)


def test_chains_are_placed_on_the_mesh_from_initialization(problem):
    lj, params, (x, y) = problem
    mesh = bj.sharding.mesh(chains=4)
    config = RunConfig(num_steps=4, batch_size=16, num_chains=8, buffer=(2, 0, 1), mesh=mesh)
    chains = START(bj.sgld(lj, 0.064), config, jax.random.key(0), params, x.shape[0])
    for leaf in jax.tree.leaves(chains.states):
        assert leaf.sharding.spec[0] == "chains" and len(leaf.sharding.device_set) == 4


def test_a_temperature_grid_does_not_depend_on_the_device_count(tmp_path):
    from bayesjax.experiments import sweep

    config = sweep.SweepConfig(hidden=(8,), temperatures=(0.1, 1.0), seeds=(0, 1), num_steps=20, batch_size=64,
                               burnin=10, thin=5, num_chains=2, num_predictive_samples=4)
    # 4 cells per chunk sharded over 4 devices, 2 over 2, 1 on one device.
    runs = [sweep.run_sweep(config, tmp_path / str(k), progress=False, cells_per_chunk=k) for k in (4, 2, 1)]
    for records in runs[1:]:
        for a, b in zip(runs[0], records):
            for name in ("accuracy", "nll", "ece", "brier"):
                np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
