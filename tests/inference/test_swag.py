"""SWA and SWAG: exact bookkeeping, the sampling formula, and the SGD stationary distribution of a quadratic."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg

import bayesjax as bj
from bayesjax.inference import swag

build_swa = getattr(bj, "swa", swag.build_swa)
build_swag = getattr(bj, "swag", swag.build_swag)

# --------------------------------------------------------------------------- #
# A quadratic loss with additive gradient noise: -grad log p = A (w - MU) - xi, xi ~ N(0, C).
# Constant-rate SGD w <- w - ETA (A (w - MU) - xi) is a Gaussian VAR(1) process whose
# stationary covariance solves Sigma = F Sigma F^T + ETA^2 C with F = I - ETA A.
# --------------------------------------------------------------------------- #
D = 4
_rng = np.random.default_rng(0)
_Q = np.linalg.qr(_rng.normal(size=(D, D)))[0]
A = _Q @ np.diag([0.5, 1.0, 1.5, 2.0]) @ _Q.T
MU = np.array([1.0, -0.5, 2.0, 0.0])
_L = np.tril(_rng.normal(size=(D, D))) * 0.5 + np.eye(D)
C = _L @ _L.T
ETA = 0.05
F = np.eye(D) - ETA * A
SIGMA = scipy.linalg.solve_discrete_lyapunov(F, ETA**2 * C)


def quadratic_log_joint():
    prior = bj.priors.Prior(
        log_prob=lambda p: -0.5 * (p["w"] - MU) @ jnp.asarray(A) @ (p["w"] - MU),
        sample=lambda key, like: like,
    )
    # The "data" are the noise vectors: log-likelihood x . w, so the gradient gains + x.
    likelihood = bj.likelihoods.Likelihood(
        "noise", "regression", lambda out, y: out[..., 0], lambda out: (out[..., 0], jnp.ones_like(out[..., 0])), 1
    )
    return bj.log_joint(lambda p, x: x @ p["w"][:, None], prior, likelihood, num_data=1)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def run_quadratic(algo, num_steps, num_chains, key):
    """Chains started in the stationary distribution, fresh gradient noise every step."""
    chol_sigma, chol_c = jnp.asarray(np.linalg.cholesky(SIGMA)), jnp.asarray(np.linalg.cholesky(C))

    def chain(key):
        start_key, noise_key = jax.random.split(key)
        state = algo.init(start_key, {"w": MU + chol_sigma @ jax.random.normal(start_key, (D,))})

        def body(state, t):
            k = jax.random.fold_in(noise_key, t)
            x = (chol_c @ jax.random.normal(k, (D,)))[None, :]
            return algo.step(k, state, (x, jnp.zeros(1)))[0], None

        return jax.lax.scan(body, state, jnp.arange(num_steps))[0]

    return jax.vmap(chain)(jax.random.split(key, num_chains))


def lag_covariances(collect_every, num_lags):
    """Cov(theta_{k+l}, theta_k) = M^l Sigma for the collected series, M = F^collect_every."""
    m = np.linalg.matrix_power(F, collect_every)
    lags = [SIGMA]
    for _ in range(num_lags - 1):
        lags.append(m @ lags[-1])
    return np.stack(lags)


def variance_of_mean(lags, n):
    weights = 1 - np.arange(n) / n
    s = np.einsum("l,lij->ij", weights[1:], lags[1:n])
    return (lags[0] + s + s.T) / n


# --------------------------------------------------------------------------- #
# Exact bookkeeping
# --------------------------------------------------------------------------- #
def small_problem():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(24, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 0.5]) + 0.3 * rng.normal(size=24)).astype(np.float32)
    lj = bj.log_joint(lambda p, x: x @ p["w"][:, None] + p["b"], bj.priors.gaussian(1.0), bj.likelihoods.gaussian(0.3),
                      num_data=24)
    return lj, {"w": jnp.zeros(3), "b": jnp.zeros(1)}, (x, y)


def trajectory(algo, params, data, num_steps):
    """States after each step on fixed minibatches of 8."""
    x, y = data
    state, states = algo.init(jax.random.key(0), params), []
    step = jax.jit(algo.step)
    for t in range(num_steps):
        i = (t % 3) * 8
        state, info = step(jax.random.key(t), state, (x[i:i + 8], y[i:i + 8]))
        states.append((state, info))
    return states


def test_swa_averages_the_collected_sgd_iterates():
    lj, params, data = small_problem()
    optimizer = optax.sgd(0.024, momentum=0.9)
    swa_states = trajectory(build_swa(lj, optimizer, start_step=3, collect_every=2), params, data, 12)
    map_states = trajectory(bj.map(lj, optimizer), params, data, 12)
    collected = [map_states[t - 1][0].params for t in (5, 7, 9, 11)]  # t > 3 and (t - 3) % 2 == 0
    state, _ = swa_states[-1]
    np.testing.assert_allclose(state.params["w"], map_states[-1][0].params["w"], rtol=1e-6)  # the same SGD path
    assert int(state.num_collected) == 4
    assert [bool(info.collected) for _, info in swa_states] == [t in (5, 7, 9, 11) for t in range(1, 13)]
    for name in ("w", "b"):
        np.testing.assert_allclose(state.mean[name], np.mean([p[name] for p in collected], 0), rtol=1e-5, atol=1e-7)
    samples = build_swa(lj, optimizer).sample(jax.random.key(0), state, 3)
    np.testing.assert_array_equal(samples["w"], np.broadcast_to(state.mean["w"], (3, 3)))
    # Before any collection the posterior is the point mass at the iterate.
    first, _ = swa_states[0]
    np.testing.assert_array_equal(swag.swa_sample(first, 2)["w"][0], first.params["w"])


def test_swag_moments_and_ring_buffer_match_a_direct_computation():
    lj, params, data = small_problem()
    algo = build_swag(lj, optax.sgd(0.024, momentum=0.9), start_step=1, collect_every=1, rank=3)
    states = trajectory(algo, params, data, 8)
    flat = lambda tree: np.concatenate([np.asarray(tree["b"]), np.asarray(tree["w"])], -1)  # leaf order: b, w
    iterates = np.stack([flat(s.params) for s, _ in states[1:]])  # collections 1..7
    state, _ = states[-1]
    np.testing.assert_allclose(flat(state.mean), iterates.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(flat(state.variance), iterates.var(0), rtol=1e-3, atol=1e-10)
    running_means = np.cumsum(iterates, 0) / np.arange(1, 8)[:, None]
    deviations = iterates - running_means
    # 7 collections into 3 slots: slot i % 3 holds collection i (from 0), so slots hold 6, 4, 5.
    np.testing.assert_allclose(flat(state.deviations), deviations[[6, 4, 5]], rtol=1e-4, atol=1e-7)

    # The covariance sampled from: (diag + D D^T / (K - 1)) / 2 with K = 3.
    expected = 0.5 * np.diag(iterates.var(0)) + 0.5 * deviations[4:].T @ deviations[4:] / 2
    np.testing.assert_allclose(swag.covariance(state), expected, rtol=1e-3, atol=1e-12)


@pytest.fixture(scope="module")
def rank3_state():
    """One chain of SWAG, rank 3 on the 4-D quadratic: the deviations span a 3-D subspace."""
    with jax.enable_x64(True):
        algo = build_swag(quadratic_log_joint(), optax.sgd(ETA), start_step=0, collect_every=10, rank=3)
        return jax.tree.map(lambda leaf: leaf[0], run_quadratic(algo, 500, 1, jax.random.key(0)))


@pytest.mark.parametrize("rank,diag", [(3, True), (3, False), (0, True)])
def test_swag_samples_follow_the_formula(rank3_state, rank, diag):
    """Draws have mean theta_bar and covariance (diag/2 + D D^T / (2 (K - 1))), within Wishart Monte Carlo error
    (rank=0: diag; diag=False: D D^T / (K - 1), every draw in the span of the deviations)."""
    state = rank3_state._replace(variance=rank3_state.variance if diag else None,
                                 deviations=rank3_state.deviations if rank else None)
    with jax.enable_x64(True):
        num_samples = 20_000
        draws = np.asarray(swag.swag_sample(jax.random.key(1), state, num_samples)["w"])
        mean, cov = np.asarray(state.mean["w"]), np.asarray(swag.covariance(state))
    var = np.diag(cov)
    z_mean = (draws.mean(0) - mean) / np.sqrt(var / num_samples)
    z_cov = (np.cov(draws.T) - cov) / np.sqrt((np.outer(var, var) + cov**2) / num_samples)
    assert np.all(np.abs(z_mean) < 3) and np.all(np.abs(z_cov) < 3), (z_mean, z_cov)
    if not diag:
        basis = np.linalg.qr(np.asarray(state.deviations["w"]).T)[0]
        residual = (draws - mean) - (draws - mean) @ basis @ basis.T
        assert np.max(np.abs(residual)) < 1e-10 * np.max(np.abs(draws - mean))
        assert np.linalg.matrix_rank(cov) == 3


# --------------------------------------------------------------------------- #
# The SGD stationary distribution of a quadratic
# --------------------------------------------------------------------------- #
NUM_CHAINS, COLLECT_EVERY, NUM_COLLECTED, RANK = 64, 10, 400, 20


@pytest.fixture(scope="module")
def stationary_swag():
    with jax.enable_x64(True):
        algo = build_swag(quadratic_log_joint(), optax.sgd(ETA), start_step=0, collect_every=COLLECT_EVERY,
                          rank=RANK)
        states = run_quadratic(algo, COLLECT_EVERY * NUM_COLLECTED, NUM_CHAINS, jax.random.key(3))
        return jax.tree.map(np.asarray, states)


def test_swag_mean_and_diagonal_match_the_stationary_distribution(stationary_swag):
    """Each chain's SWAG mean and variance, pooled over chains, within 3 exact standard errors.

    Chains start in the stationary distribution, so the collected iterates form a stationary Gaussian
    VAR(1) series with lag covariances M^l Sigma: Var(mean) and E[variance] = Sigma_ii - Var(mean)_ii are
    exact; SD(variance) uses the Gaussian fourth moment, (2/n) [c_0^2 + 2 sum_l (1 - l/n) c_l^2].
    """
    n = NUM_COLLECTED
    lags = lag_covariances(COLLECT_EVERY, n)
    var_mean = variance_of_mean(lags, n)
    c = np.einsum("lii->li", lags)
    var_variance = 2 / n * (c[0] ** 2 + 2 * np.einsum("l,li->i", 1 - np.arange(1, n) / n, c[1:] ** 2))
    means, variances = stationary_swag.mean["w"], stationary_swag.variance["w"]
    assert np.all(stationary_swag.num_collected == n)
    z_mean = (means.mean(0) - MU) / np.sqrt(np.diag(var_mean) / NUM_CHAINS)
    z_var = (variances.mean(0) - (np.diag(SIGMA) - np.diag(var_mean))) / np.sqrt(var_variance / NUM_CHAINS)
    assert np.all(np.abs(z_mean) < 3), z_mean
    assert np.all(np.abs(z_var) < 3), z_var


def test_swag_deviations_capture_the_stationary_covariance(stationary_swag):
    """(1/K) D D^T, pooled over chains, matches its exact expectation (~ Sigma) in the collected subspace.

    Deviation n is theta_n - theta_bar_n, so E[d d^T] = Sigma - (1/n) sum_{l<n} (L_l + L_l^T) + Var(theta_bar_n),
    L_l = M^l Sigma. The standard error comes from the spread over independent chains.
    """
    n = NUM_COLLECTED
    lags = lag_covariances(COLLECT_EVERY, n)
    expected = np.zeros((D, D))
    for k in range(n - RANK + 1, n + 1):
        s = lags[:k].sum(0) / k
        expected += SIGMA - s - s.T + variance_of_mean(lags, k)
    expected /= RANK
    devs = stationary_swag.deviations["w"]  # [chains, K, D]
    per_chain = np.einsum("cki,ckj->cij", devs, devs) / RANK
    se = per_chain.std(0, ddof=1) / np.sqrt(NUM_CHAINS)
    z = (per_chain.mean(0) - expected) / se
    assert np.all(np.abs(z) < 3), z
    np.testing.assert_allclose(expected, SIGMA, rtol=0.02, atol=0.02 * np.max(SIGMA))  # the corrections are small


# --------------------------------------------------------------------------- #
# Schedules, the driver, bad input
# --------------------------------------------------------------------------- #
def test_cyclical_learning_rate_reaches_its_minimum_at_each_cycle_end():
    schedule = swag.cyclical_learning_rate(1e-2, 1e-4, 5)
    rates = np.asarray([schedule(jnp.asarray(i)) for i in range(10)])
    np.testing.assert_allclose(rates[[4, 9]], 1e-4, rtol=1e-6)
    np.testing.assert_allclose(rates[[0, 5]], 0.8 * 1e-2 + 0.2 * 1e-4, rtol=1e-6)
    assert np.all(np.diff(rates[:5]) < 0)


def test_swag_in_the_driver():
    lj, params, data = small_problem()
    algo = build_swag(lj, optax.sgd(0.024, momentum=0.9), start_step=10, collect_every=3, rank=5)
    post = bj.run(jax.random.key(0), algo, params, data, num_steps=40, batch_size=8, num_chains=2, progress=False)
    assert post.state.deviations["w"].shape == (2, 5, 3)
    np.testing.assert_array_equal(post.state.num_collected, [10, 10])
    samples = post.sample(jax.random.key(1), 6)
    assert samples["w"].shape == (6, 3) and len(np.unique(samples["w"][:, 0])) == 6  # Gaussian draws, all distinct


@pytest.mark.parametrize("kwargs,match", [
    ({"rank": 1}, "rank must be 0"),
    ({"rank": 0, "diag": False}, "use bj.swa"),
    ({"rank": -1}, "rank"),
    ({"start_step": -1}, "start_step"),
    ({"collect_every": 0}, "collect_every"),
    ({"var_clamp": 0.0}, "var_clamp"),
])
def test_swag_rejects_bad_hyperparameters(kwargs, match):
    lj, _, _ = small_problem()
    with pytest.raises(ValueError, match=match):
        build_swag(lj, optax.sgd(1e-3), **kwargs)
