"""Honest-temperature estimators against exact samples and known noise."""
import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax import memory
from bayesjax.experiments import sweep
from bayesjax.experiments.sweep.temperature import gradient_cost, sgmcmc_checks


def test_configurational_temperature_of_exact_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    y = x @ rng.normal(size=4) + 0.3 * rng.normal(size=50)
    with jax.enable_x64(True):
        for temperature in (1.0, 0.05):
            mean, cov = bj.linear.posterior(x, y, 0.3, 1.0, temperature=temperature)
            draws = jnp.asarray(rng.multivariate_normal(np.asarray(mean), np.asarray(cov), size=4000))
            lj = bj.log_joint(lambda p, x: x @ p[:, None], bj.priors.gaussian(1.0), bj.likelihoods.gaussian(0.3),
                              50, temperature=temperature)
            potential = lambda p: -temperature * lj(p, (x, y))  # noqa: E731
            grad_potential = jax.grad(potential)
            estimate = float(sweep.configurational_temperature(potential, draws))
            per_draw = np.asarray(jax.vmap(lambda p: p @ grad_potential(p))(draws)) / 4
            assert abs(estimate - temperature) < 3 * per_draw.std() / np.sqrt(len(per_draw))


def test_gradient_noise_ratio_of_known_noise():
    grads = {"w": jnp.asarray(np.random.default_rng(1).normal(0.0, 3.0, size=(20000, 5)))}
    ratio = float(sweep.gradient_noise_ratio(grads, step_size=1e-3, temperature=0.5))
    np.testing.assert_allclose(ratio, 1e-3 * 9.0 / (2 * 0.5), rtol=0.03)


def _sgld_problem(num_data=90):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(num_data, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=num_data).astype(np.int32)
    model = bj.models.mlp([8], num_outputs=3)
    lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data, temperature=0.3)
    return x, y, model, lj


def test_full_potential_grad_in_chunks_equals_the_one_pass_gradient():
    x, y, model, lj = _sgld_problem()
    params = model.init(jax.random.key(0), x[:1])
    expected = jax.grad(lj.potential)(params, (x, y))
    for chunk in (7, 90):  # a ragged last chunk, and one chunk
        got = jax.jit(lambda p: lj.full_potential_grad(p, (x, y), chunk))(params)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_checks_in_budget_chosen_chunks_equal_the_checks_in_one_pass():
    x, y, model, lj = _sgld_problem()
    config = sweep.SweepConfig(hidden=(8,), batch_size=16, num_chains=2)
    post = bj.run(jax.random.key(1), bj.sgld(lj, 1e-3), model.init(jax.random.key(0), x[:1]), (x, y), num_steps=20,
                  batch_size=16, num_chains=2, burnin=10, progress=False)
    per_example, fixed = gradient_cost(lj, post.state.inner.position, (x, y))
    assert per_example > 4 * 8  # at least the hidden layer's activations and their gradient

    def checks(budget):
        return jax.jit(lambda s, i: sgmcmc_checks(lj, config, post.algorithm, s, i, jax.random.key(2), x, y,
                                                  momentum=False, memory_budget=budget))(post.state, post.info)

    # 4 examples' gradients at once: chunks of the data for the full gradient, one minibatch at a time.
    small = int(np.ceil(4 * per_example + fixed))
    assert memory.chunk_sizes(1, 90, per_example, fixed, budget=small)[1] == 4
    assert memory.chunk_sizes(8, 1, 16 * per_example, fixed, budget=small)[0] == 1
    chunked, whole = checks(small), checks(2**40)
    for name in ("grad_noise_ratio", "configurational_temperature"):
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-4)
        assert np.isfinite(whole[name])


def test_kinetic_temperature_of_preconditioned_sghmc_under_constant_and_cyclical_steps():
    """Full-batch SGHMC on a Gaussian target: <v^T G^-1 v> / (d eps) gives T back with a layerwise G != 1.

    The step eps is the momenta's memory-weighted recent step
    (:func:`momentum_step_size`): at the end of a cosine cycle the last step
    alone (about 1e-5 of the first) overstates T many times over.
    """
    from bayesjax.inference.sgmcmc import sghmc_init, sghmc_step

    rng = np.random.default_rng(4)
    num_data, temperature, friction, lr, steps = 60, 0.5, 0.1, 0.02, 3000
    x = rng.normal(size=(num_data, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 0.5]) + 0.3 + 0.5 * rng.normal(size=num_data)).astype(np.float32)
    lj = bj.log_joint(lambda p, x: x @ p["w"][:, None] + p["b"], bj.priors.gaussian(1.0),
                      bj.likelihoods.gaussian(0.5), num_data, temperature=temperature)
    gains = {"b": jnp.asarray(1.0), "w": jnp.asarray(0.2)}
    cycle = lambda count: lr / 2 * (jnp.cos(jnp.pi * (count % steps) / steps) + 1)  # noqa: E731

    def chain(key, schedule):
        state = sghmc_init({"w": jnp.zeros(3), "b": jnp.zeros(())}, preconditioned=True)._replace(preconditioner=gains)

        def step(state, key):
            state, info = sghmc_step(key, state, (x, y), log_joint=lj, step_size=schedule, friction=friction,
                                     precondition_every=10**9)
            return state, info.step_size

        return jax.lax.scan(step, state, jax.random.split(key, steps))

    for schedule in (lr, cycle):
        states, step_sizes = jax.jit(jax.vmap(lambda k: chain(k, schedule)))(jax.random.split(jax.random.key(0), 512))
        kinetic = jax.vmap(sweep.kinetic_temperature)(
            states.momentum, sweep.momentum_step_size(step_sizes.T / num_data, friction), states.preconditioner)
        np.testing.assert_allclose(float(jnp.mean(kinetic)), temperature, rtol=0.1)
        if schedule is cycle:
            last = jax.vmap(sweep.kinetic_temperature)(states.momentum, step_sizes[:, -1] / num_data,
                                                       states.preconditioner)
            assert float(jnp.mean(last)) > 10 * temperature
    unpreconditioned = jax.vmap(sweep.kinetic_temperature)(states.momentum, sweep.momentum_step_size(
        step_sizes.T / num_data, friction))
    assert float(jnp.mean(unpreconditioned)) < 0.5 * temperature  # G = 0.2 on 3 of 4 weights: T is not read back
