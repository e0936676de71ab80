"""SG-MCMC against the exact Bayesian linear regression posterior, and its failure modes."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bayesjax as bj
from bayesjax.inference import sgmcmc
from tests.helpers import linear_problem
from tests.helpers.linear_problem import NOISE, PRIOR, D
from tests.helpers.stats import assert_gaussian_moments, chain_draws

N = 100
NUM_STEPS, BURNIN = 20_000, 2_000


@pytest.fixture(scope="module")
def data():
    return linear_problem.data(N)


def log_joint(temperature=1.0, tempering="posterior"):
    return linear_problem.log_joint(N, temperature, tempering)


# Learning rates per example (Langevin steps eps = lr / N) keep the O(eps * lambda_max) discretization bias
# (lambda_max ~ N / noise^2 = 400 here) below the Monte Carlo error: SGHMC at eps = 1e-4 has a ~4% variance
# bias, which 72k draws resolve.
SAMPLERS = {
    "sgld": lambda lj: bj.sgld(lj, step_size=0.01),
    "sghmc": lambda lj: bj.sghmc(lj, step_size=2.5e-3, friction=0.05),
    "cyclical_sgld": lambda lj: bj.cyclical_sgld(lj, step_size=0.03, num_cycles=10, num_steps=NUM_STEPS),
    "cyclical_sghmc": lambda lj: bj.cyclical_sgld(lj, step_size=0.03, num_cycles=10, num_steps=NUM_STEPS,
                                                  friction=0.1),
}


@pytest.mark.parametrize("temperature,tempering", [(1.0, "posterior"), (0.1, "posterior"), (0.5, "likelihood")])
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_recovers_the_exact_tempered_posterior(data, name, temperature, tempering):
    x, y = data
    with jax.enable_x64(True):
        lj = log_joint(temperature, tempering)
        post = bj.run(jax.random.key(1), SAMPLERS[name](lj), {"w": jnp.zeros(D)}, (x, y), num_steps=NUM_STEPS,
                      num_chains=4, burnin=BURNIN, progress=False)
        mean, cov = bj.linear.posterior(x, y, NOISE, PRIOR, temperature=temperature, tempering=tempering)
        assert_gaussian_moments(chain_draws(post), mean, cov)


@pytest.mark.parametrize("num_data", [N, 10 * N])
def test_one_learning_rate_serves_n_and_10n_examples(num_data):
    """lr = 0.01 per example is a Langevin step 0.01 / N: the same discretization bias eps * lambda_max at
    N and 10 N, so both runs recover their own (different) exact posteriors. Full batch: at a fixed lr the
    minibatch gradient noise grows with N / batch size (the sweep's grad_noise_ratio reports it)."""
    x, y = linear_problem.data(num_data)
    with jax.enable_x64(True):
        lj = linear_problem.log_joint(num_data)
        post = bj.run(jax.random.key(11), bj.sgld(lj, 0.01), {"w": jnp.zeros(D)}, (x, y), num_steps=NUM_STEPS,
                      num_chains=4, burnin=BURNIN, progress=False)
        mean, cov = bj.linear.posterior(x, y, NOISE, PRIOR)
        assert_gaussian_moments(chain_draws(post), mean, cov)


def test_preconditioned_sgld(data):
    # pSGLD drops the Gamma term (Li et al. 2016); with a slowly moving preconditioner that bias stays
    # within the Monte Carlo error here. RMSprop steps move ~lr per coordinate whatever the gradient's
    # scale, so burn-in is long.
    x, y = data
    with jax.enable_x64(True):
        algo = bj.sgld(log_joint(), step_size=1e-3, preconditioned=True, rmsprop_decay=0.9999)
        post = bj.run(jax.random.key(1), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=NUM_STEPS + 6_000,
                      num_chains=4, burnin=BURNIN + 6_000, progress=False)
        mean, cov = bj.linear.posterior(x, y, NOISE, PRIOR)
        assert_gaussian_moments(chain_draws(post), mean, cov)


def test_minibatch_sgld_at_temperature_one(data):
    x, y = data
    with jax.enable_x64(True):
        post = bj.run(jax.random.key(2), bj.sgld(log_joint(), 0.01), {"w": jnp.zeros(D)}, (x, y),
                      num_steps=NUM_STEPS, batch_size=50, num_chains=4, burnin=BURNIN, progress=False)
        mean, cov = bj.linear.posterior(x, y, NOISE, PRIOR)
        assert_gaussian_moments(chain_draws(post), mean, cov)


@pytest.mark.parametrize("name", ["sgld", "sghmc"])
def test_cold_limit_concentrates_on_the_map(data, name):
    x, y = data
    with jax.enable_x64(True):
        post = bj.run(jax.random.key(3), SAMPLERS[name](log_joint(1e-4)), {"w": jnp.zeros(D)}, (x, y),
                      num_steps=10_000, num_chains=2, burnin=5_000, progress=False)
        mode, cov = bj.linear.posterior(x, y, NOISE, PRIOR)
        draws = chain_draws(post).reshape(-1, D)
        np.testing.assert_allclose(draws.mean(0), mode, atol=0.01 * float(np.sqrt(cov[0, 0])))
        assert np.all(draws.std(0) < 0.02 * np.sqrt(np.diag(cov)))


def test_one_step_size_is_stable_from_t1_to_t1e4():
    ds = bj.data.load("digits")
    model = bj.models.mlp([16], num_outputs=10)
    params = model.init(jax.random.key(0), ds.x_train[:1])
    data = (ds.x_train, ds.y_train)

    def run(temperature):
        lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), len(ds.y_train),
                          temperature=temperature)
        return bj.run(jax.random.key(4), bj.sgld(lj, 0.15), params, data, num_steps=300, batch_size=128,
                      num_chains=2, burnin=100, progress=False)

    for temperature in (1.0, 1e-2, 1e-4):
        post = run(temperature)
        assert not post.divergences
        assert np.all(np.isfinite(post.info.log_density))
        # The drift is the same at every temperature: the untempered log-joint improves alike.
        untempered = np.asarray(post.info.log_density) * temperature
        assert untempered[-20:].mean() > untempered[:20].mean()


@pytest.mark.parametrize("info_every", [1, 0])  # 0: divergence seen in the positions alone
def test_divergent_step_size_is_reported_not_returned(data, info_every):
    x, y = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = bj.run(jax.random.key(5), bj.sgld(log_joint(), step_size=100.0), {"w": jnp.zeros(D)}, (x, y),
                      num_steps=200, num_chains=3, progress=False, info_every=info_every)
    assert set(post.divergences) == {0, 1, 2} and all(1 <= t <= 200 for t in post.divergences.values())
    assert any(issubclass(w.category, bj.DivergenceWarning) and "chain 0 diverged at step" in str(w.message)
               for w in caught)
    with pytest.raises(bj.DivergenceError, match="every chain diverged"):
        post.sample(jax.random.key(6), 10)


def test_a_diverged_chain_is_excluded_from_the_samples(data):
    x, y = data
    algo = bj.sgld(log_joint(), step_size=0.01)
    healthy = bj.run(jax.random.key(7), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=50, num_chains=2,
                     progress=False)
    with pytest.warns(bj.DivergenceWarning, match="chain 0 diverged at step 1"):
        far = bj.run(jax.random.key(7), algo, {"w": jnp.full(D, 1e30)}, (x, y), num_steps=50, progress=False)
    # One posterior whose middle chain overflowed at its first step.
    mixed = healthy._replace(state=jax.tree.map(lambda h, f: jnp.concatenate([h[:1], f, h[1:]]),
                                                healthy.state, far.state))
    assert mixed.divergences == {1: 1}
    with pytest.warns(bj.DivergenceWarning, match="chain 1 diverged at step 1: excluded"):
        samples = mixed.sample(jax.random.key(8), 20)
    assert np.all(np.isfinite(samples["w"]))


def test_optax_schedule_as_step_size(data):
    x, y = data
    schedule = optax.polynomial_schedule(0.01, 1e-3, power=1.0, transition_steps=100)
    post = bj.run(jax.random.key(9), bj.sgld(log_joint(), schedule), {"w": jnp.zeros(D)}, (x, y),
                  num_steps=100, progress=False)
    np.testing.assert_allclose(post.info.step_size[:, 0], schedule(np.arange(100)), rtol=1e-5)


def test_cyclical_collects_only_in_sampling_phases(data):
    x, y = data
    algo = bj.cyclical_sgld(log_joint(), step_size=0.01, num_cycles=4, num_steps=400, exploration_fraction=0.75)
    post = bj.run(jax.random.key(10), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=400, progress=False)
    assert int(post.state.num_collected[0]) == 4 * 25
    is_sample = np.asarray(post.info.is_sample[:, 0]).reshape(4, 100)
    assert not is_sample[:, :75].any() and is_sample[:, 75:].all()
    step_size = np.asarray(post.info.step_size[:, 0]).reshape(4, 100)
    np.testing.assert_allclose(step_size[:, 0], 0.01)  # each cycle restarts at lr_0
    assert np.all(np.diff(step_size, axis=1) <= 0)


@pytest.mark.parametrize("build,kwargs,word", [
    (bj.sgld, {"step_size": 0.0}, "step_size"),
    (bj.sghmc, {"step_size": 1e-4, "friction": 1.5}, "friction"),
    (bj.cyclical_sgld, {"step_size": 1e-4, "num_cycles": 5, "num_steps": 3}, "num_cycles"),
    (bj.cyclical_sgld, {"step_size": 1e-4, "num_cycles": 2, "num_steps": 10, "exploration_fraction": 1.0},
     "exploration_fraction"),
])
def test_bad_hyperparameters(build, kwargs, word):
    with pytest.raises(ValueError, match=word):
        build(log_joint(), **kwargs)


def test_layerwise_preconditioner_is_wenzel_et_al():
    square_avg = {"a": jnp.full((2, 3), 4.0), "b": jnp.full((5,), 1.0), "c": jnp.asarray([0.5, 1.5])}
    gains = sgmcmc.layerwise_preconditioner(square_avg, epsilon=0.0)
    np.testing.assert_allclose([gains["a"], gains["b"], gains["c"]], [0.5, 1.0, 1.0], rtol=1e-6)  # sqrt(1 / s_l)


def test_layerwise_preconditioned_sghmc_recovers_the_exact_posterior(data):
    """Two leaves whose inputs differ 10x in scale, so their gradients (and G_l) differ; G is refreshed every
    100 steps and fixed in between, where the dynamics are exact SGHMC in the coordinates M^(1/2) theta."""
    x, y = data
    scale = np.array([1.0, 1.0, 10.0])
    xs = x * scale

    def apply(params, inputs):
        return (inputs @ jnp.concatenate([params["a"], params["b"]]))[:, None]

    with jax.enable_x64(True):
        lj = bj.log_joint(apply, bj.priors.gaussian(PRIOR), bj.likelihoods.gaussian(NOISE), num_data=N)
        algo = bj.sghmc(lj, step_size=2.5e-3, friction=0.05, precondition_every=100)
        post = bj.run(jax.random.key(12), algo, {"a": jnp.zeros(2), "b": jnp.zeros(1)}, (xs, y),
                      num_steps=NUM_STEPS, num_chains=4, burnin=BURNIN, progress=False)
        gains = post.state.inner.preconditioner
        assert float(gains["b"][0]) < 0.3 and float(gains["a"][0]) == 1.0  # the 10x input moves 10x slower
        mean, cov = bj.linear.posterior(xs, y, NOISE, PRIOR)
        draws = chain_draws(post, lambda p: jnp.concatenate([p["a"], p["b"]], -1))
        assert_gaussian_moments(draws, mean, cov)
