"""The tempered ELBO and its reparametrized minibatch estimator: expectation, gradients, annealing, diagnostics."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax.inference.vi import fullrank, meanfield, objective
from tests.helpers.linear_problem import NOISE, PRIOR, D
from tests.helpers.vi_problem import N, X, Y, exact, log_joint, meanfield_state


def kl_to(mean_q, cov_q, mean_p, cov_p):
    """KL(N(mean_q, cov_q) || N(mean_p, cov_p))."""
    prec = np.linalg.inv(cov_p)
    d = mean_p - mean_q
    return 0.5 * (np.trace(prec @ cov_q) + d @ prec @ d - len(d)
                  + np.linalg.slogdet(cov_p)[1] - np.linalg.slogdet(cov_q)[1])


def random_fullrank_state(key):
    """A full-rank q far from the posterior: random mean and factor."""
    k1, k2 = jax.random.split(key)
    return fullrank.FullRankVIState({"w": jax.random.normal(k1, (D,))},
                                    jnp.tril(0.3 * jax.random.normal(k2, (D, D))) - jnp.eye(D), (), jnp.zeros((), int))


@functools.partial(jax.jit, static_argnames="tempering")
def tempered_elbo_draws(temperature, tempering, mode):
    """4096 one-draw ELBO estimates of a random q; q's moments; the log-joint at the posterior mode."""
    lj = log_joint(temperature, tempering)
    state = random_fullrank_state(jax.random.key(0))
    draw = functools.partial(objective.elbo_draw, state=state, batch=(X, Y), log_joint=lj, family=fullrank.family())
    draws = jax.vmap(lambda k: draw(k))(jax.random.split(jax.random.key(1), 4096))
    return draws, state.mean["w"], fullrank.covariance(state), lj.full({"w": mode}, (X, Y))


@pytest.mark.parametrize("tempering,temperature", [("posterior", 0.3), ("likelihood", 0.3), ("posterior", 1.0)])
def test_tempered_elbo_is_log_normalizer_minus_kl(tempering, temperature):
    # ELBO_T(q) = log Z_T - KL(q || p_T), with p_T ∝ exp(log_joint): the tempering conventions agree.
    with jax.enable_x64(True):
        mean, cov = exact(temperature, tempering)
        draws, q_mean, q_cov, at_mode = jax.device_get(tempered_elbo_draws(temperature, tempering, mean))
        log_z = float(at_mode) + 0.5 * D * math.log(2 * math.pi) + 0.5 * np.linalg.slogdet(cov)[1]
        expected = log_z - kl_to(q_mean, q_cov, mean, cov)
        elbo = np.asarray(draws.elbo)
        assert abs(elbo.mean() - expected) < 4 * elbo.std() / math.sqrt(elbo.size), (elbo.mean(), expected)
        # Its parts: the analytic KL to the prior, and the tempering rule of the log-joint.
        kl_prior = kl_to(q_mean, q_cov, np.zeros(D), PRIOR**2 * np.eye(D))
        np.testing.assert_allclose(-(draws.expected_log_prior + draws.entropy), kl_prior, rtol=1e-12)
        ell, entropy = draws.expected_log_likelihood, draws.entropy
        if tempering == "likelihood":
            np.testing.assert_allclose(elbo, ell / temperature - kl_prior, rtol=1e-10)
        else:
            np.testing.assert_allclose(elbo, (ell - kl_prior) / temperature + (1 - 1 / temperature) * entropy,
                                       rtol=1e-10)


def analytic_meanfield_elbo(mean, rho, lj):
    """Closed-form ELBO of mean-field q on Bayesian linear regression (T = 1)."""
    var = jax.nn.softplus(rho) ** 2
    residual = Y - X @ mean
    ell = -0.5 * N * jnp.log(2 * math.pi * NOISE**2) - (residual @ residual + (X**2).sum(0) @ var) / (2 * NOISE**2)
    log_prior = jnp.sum(-0.5 * jnp.log(2 * math.pi * PRIOR**2) - (mean**2 + var) / (2 * PRIOR**2))
    entropy = jnp.sum(jnp.log(jax.nn.softplus(rho))) + 0.5 * D * (1 + math.log(2 * math.pi))
    return lj.combine(ell, log_prior) + entropy


def test_minibatch_elbo_gradient_is_unbiased():
    with jax.enable_x64(True):
        lj = log_joint()
        family = meanfield.family()
        state = meanfield_state(0.2, {"w": np.array([0.5, -1.0, 0.2])}, spread=0.5)

        def gradient(key, batch):
            _, grads, _ = objective.elbo_value_and_grad(key, state, batch, log_joint=lj, family=family)
            return jnp.concatenate([grads[0]["w"], grads[1]["w"]])

        @jax.jit
        def check():
            x, y = jnp.asarray(X), jnp.asarray(Y)
            key = jax.random.key(4)
            partition = jax.vmap(lambda i: gradient(key, (x.reshape(4, 25, D)[i], y.reshape(4, 25)[i])))(
                jnp.arange(4))

            def random_batch_gradient(key):
                draw_key, batch_key = jax.random.split(key)
                index = jax.random.randint(batch_key, (10,), 0, N)  # with replacement: also unbiased
                return gradient(draw_key, (x[index], y[index]))

            random = jax.vmap(random_batch_gradient)(jax.random.split(jax.random.key(5), 8192))
            expected = jax.grad(analytic_meanfield_elbo, argnums=(0, 1))(state.mean["w"], state.rho["w"], lj)
            return partition.mean(0), gradient(key, (x, y)), random, jnp.concatenate(expected)

        partition, full, random, expected = jax.device_get(check())
        # Same draw on every batch: the mean over a partition of the data is the full-data gradient, exactly.
        np.testing.assert_allclose(partition, full, rtol=1e-10, atol=1e-10)
        # Random draw and random batch of 10: the average is the gradient of the closed-form ELBO.
        z = (random.mean(0) - expected) / (random.std(0) / math.sqrt(len(random)))
        assert np.all(np.abs(z) < 4), np.round(z, 2)


def test_monte_carlo_kl_matches_the_analytic_kl():
    # A Gaussian prior without `stddev` takes the Monte Carlo path; same expectation, for value and gradient.
    with jax.enable_x64(True):
        gaussian = bj.priors.gaussian(PRIOR)
        analytic_lj, mc_lj = log_joint(0.5), log_joint(0.5, prior=gaussian._replace(stddev=None))
        family = meanfield.family()
        state = meanfield_state(0.3, {"w": np.array([0.5, -1.0, 0.2])}, spread=0.5, seed=1)

        def estimate(lj, key):
            terms, grads, _ = objective.elbo_value_and_grad(key, state, (X, Y), log_joint=lj, family=family)
            return jnp.concatenate([terms.elbo[None], grads[0]["w"], grads[1]["w"]])

        keys = jax.random.split(jax.random.key(7), 4096)
        both = jax.jit(lambda keys: [jax.vmap(functools.partial(estimate, lj))(keys) for lj in (analytic_lj, mc_lj)])
        a, m = (np.asarray(e) for e in both(keys))
        difference = m - a  # same draws: the difference is the prior term's Monte Carlo error alone
        z = difference.mean(0) / (difference.std(0) / math.sqrt(len(keys)))
        assert np.all(np.abs(z) < 4), np.round(z, 2)
        assert np.all(difference.std(0) > 0)  # the Monte Carlo path was really taken


def test_kl_annealing_weights_the_prior_and_entropy_terms():
    lj = log_joint(0.5, "likelihood")
    family = meanfield.family()
    state = meanfield_state(0.3, {"w": np.array([0.5, -1.0, 0.2], np.float32)})
    batch = (X.astype(np.float32), Y.astype(np.float32))

    @jax.jit
    def run(weight):  # a schedule count -> beta, read at state.count = 0
        terms, grads, _ = objective.elbo_value_and_grad(jax.random.key(9), state, batch, log_joint=lj,
                                                        family=family, kl_weight=lambda count: weight + count)
        return terms, jnp.concatenate([g["w"] for g in grads])

    (t1, g1), (t0, g0), (terms, grads) = (run(w) for w in (1.0, 0.0, 0.25))
    np.testing.assert_allclose(terms.elbo, t1.elbo, rtol=1e-6)  # the reported ELBO is unweighted
    np.testing.assert_allclose(terms.objective, t0.objective + 0.25 * (t1.objective - t0.objective), rtol=1e-5)
    np.testing.assert_allclose(grads, g0 + 0.25 * (g1 - g0), rtol=1e-4, atol=1e-4)


def test_gradient_variance_diagnostic_is_the_variance_of_the_averaged_gradient():
    # With S draws per step, info.grad_variance = sum_j Var_s[g_sj] / S estimates sum_j Var[mean_s g_sj].
    with jax.enable_x64(True):
        lj = log_joint()
        family = meanfield.family()
        state = meanfield_state(0.3, {"w": np.array([0.5, -1.0, 0.2])}, spread=0.5, seed=2)

        @jax.jit
        @jax.vmap
        def estimate(key):
            _, grads, grad_variance = objective.elbo_value_and_grad(key, state, (X, Y), log_joint=lj,
                                                                    family=family, num_mc_samples=4)
            return jnp.concatenate([grads[0]["w"], grads[1]["w"]]), grad_variance

        grads, grad_variance = jax.device_get(estimate(jax.random.split(jax.random.key(12), 4096)))
        squared = np.sum((grads - grads.mean(0)) ** 2, axis=1)  # its mean is sum_j Var[mean_s g_sj]
        se = math.sqrt((grad_variance.var() + squared.var()) / len(grads))
        assert abs(grad_variance.mean() - squared.mean()) < 4 * se, (grad_variance.mean(), squared.mean(), se)
        assert np.all(grad_variance > 0)
