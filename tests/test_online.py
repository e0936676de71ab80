"""Online learning: exact on linear-Gaussian streams whatever the split, forgetting tracks drift, input checks."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

import bayesjax as bj
from bayesjax.inference.online import belief, online, vi
from bayesjax.inference.vi import meanfield
from bayesjax.inference.vi import parametrization as scales

N, D, NOISE, PRIOR = 60, 3, 0.5, 1.3
LINEAR_LAYER = bj.models.mlp([], num_outputs=1)  # y = x W + b: params Dense_0/{bias, kernel}


def linear_apply(params, x):
    return x @ params["w"][:, None]


def flat(tree):
    """``ravel_pytree`` order, in NumPy (keeps float64 outside ``enable_x64``)."""
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree.leaves(tree)])


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)) @ np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    return x, x @ np.array([1.0, -2.0, 0.5]) + NOISE * rng.normal(size=N)


@pytest.fixture(scope="module")
def orthogonal_batches():
    """Every block of 10 rows has centred, orthogonal columns: each batch's [1, X]^T [1, X] is diagonal
    (for batches of 10 and of 20), so diagonal and KFAC structures are exact too."""
    rng = np.random.default_rng(1)
    blocks = [np.linalg.qr(a - a.mean(0))[0] * np.array([3.0, 2.0, 1.0])
              for a in rng.normal(size=(N // 10, 10, D))]
    x = np.concatenate(blocks)
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.3 + NOISE * rng.normal(size=N)


@pytest.fixture(scope="module")
def centred_batches():
    """Correlated columns, centred within every block of 10 rows: for a single-output dense layer KFAC's G is a
    scalar and the kernel-bias cross term (which KFAC drops) vanishes, so KFAC is exact, diag is not."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N // 10, 10, D)) @ np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    x = (x - x.mean(1, keepdims=True)).reshape(N, D)
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.3 + NOISE * rng.normal(size=N)


def log_joint(apply, temperature=1.0, tempering="posterior"):
    return bj.log_joint(apply, bj.priors.gaussian(PRIOR), bj.likelihoods.gaussian(NOISE), num_data=N,
                        temperature=temperature, tempering=tempering)


def dense_zeros():
    """Float64 zeros for LINEAR_LAYER (call under ``enable_x64``; flax would initialize float32)."""
    return {"Dense_0": {"bias": jnp.zeros(1), "kernel": jnp.zeros((D, 1))}}


def stream(algo, params, data, batch_size, key=0, num_chains=1):
    return bj.run(jax.random.key(key), algo, params, data, num_steps=N // batch_size, batch_size=batch_size,
                  shuffle=False, progress=False, num_chains=num_chains)


def chain(tree, index=0):
    return jax.tree.map(lambda leaf: leaf[index], tree)


def covariance_of(lj, state):
    """The dense covariance of an EKF / Laplace belief, through its Laplace-posterior view."""
    num_seen = getattr(state, "num_seen", jnp.ones(()))
    view = belief.laplace_view(lj, state.mean, state.curvature, num_seen, belief.prior_coefficient(lj))
    return np.linalg.inv(np.asarray(view.precision_matrix()))


def exact_prequential(design, y, batch_size, temperature, tempering, noise_std=NOISE):
    """sum_i log N(y_i | m^T x_i, sigma^2 + x_i^T S x_i) per batch, (m, S) the exact posterior of earlier batches."""
    scores = []
    for start in range(0, len(y), batch_size):
        if start == 0:
            scale = temperature if tempering == "posterior" else 1.0
            mean, cov = np.zeros(design.shape[1]), scale * PRIOR**2 * np.eye(design.shape[1])
        else:
            mean, cov = bj.linear.posterior(design[:start], y[:start], noise_std, PRIOR, temperature, tempering)
        mu, var = bj.linear.predictive(mean, cov, design[start:start + batch_size], NOISE)
        scores.append(scipy.stats.norm.logpdf(y[start:start + batch_size], mu, np.sqrt(var)).sum())
    return np.array(scores)


# --------------------------------------------------------------------------- linear-Gaussian: exact
# (batch size, temperature, tempering, likelihood weight); a weight w is a likelihood to the power w,
# i.e. the noise variance divided by w.
SPLITS = [(10, 1.0, "posterior", 1.0), (15, 0.5, "likelihood", 1.0), (20, 0.3, "posterior", 2.0)]


@pytest.mark.parametrize("method,options,batch_size,temperature,tempering,weight",
                         [("ekf", {"structure": "full"}, *split) for split in SPLITS]
                         + [("laplace_full", {}, *split) for split in SPLITS[::2]])
def test_full_structures_are_exact_on_correlated_designs(correlated, method, options, batch_size, temperature,
                                                          tempering, weight):
    """Kalman's update (EKF) and Gauss-Newton Laplace recover the batch posterior and its prequential predictive."""
    x, y = correlated
    with jax.enable_x64(True):
        lj = log_joint(linear_apply, temperature, tempering)
        algo = online(lj, method, likelihood_weight=weight, **options)
        post = stream(algo, {"w": jnp.zeros(D)}, (x, y), batch_size)
        state = chain(post.state)
        noise_std = NOISE / np.sqrt(weight)
        mean, cov = bj.linear.posterior(x, y, noise_std, PRIOR, temperature=temperature, tempering=tempering)
        assert rel_err(state.mean["w"], mean) < 1e-10
        assert rel_err(covariance_of(lj, state), cov) < 1e-10
        expected = exact_prequential(x, y, batch_size, temperature, tempering, noise_std)
        np.testing.assert_allclose(post.info.log_predictive[:, 0], expected, rtol=1e-10)
        assert post.info.log_predictive.shape == (N // batch_size, 1)


@pytest.mark.parametrize("method,design", [("ekf", "orthogonal_batches"), ("laplace_diag", "orthogonal_batches"),
                                           ("laplace_kfac", "centred_batches")])
@pytest.mark.parametrize("batch_size", [10, 20])
def test_diag_and_kfac_are_exact_where_their_structure_is(request, method, design, batch_size):
    x, y = request.getfixturevalue(design)
    design = np.concatenate([np.ones((N, 1)), x], axis=1)  # ravel order: bias, then kernel
    with jax.enable_x64(True):
        lj = log_joint(LINEAR_LAYER.apply)
        params = dense_zeros()
        post = stream(online(lj, method), params, (x, y), batch_size)
        state = chain(post.state)
        mean, cov = bj.linear.posterior(design, y, NOISE, PRIOR)
        assert rel_err(flat(state.mean), mean) < 1e-10
        assert rel_err(covariance_of(lj, state), cov) < 1e-10
        np.testing.assert_allclose(post.info.log_predictive[:, 0],
                                   exact_prequential(design, y, batch_size, 1.0, "posterior"), rtol=1e-10)


def test_an_optax_inner_optimizer_converges_to_the_same_map(orthogonal_batches):
    """Plain gradient ascent on each batch's objective (prior = previous belief) reaches the exact posterior."""
    x, y = orthogonal_batches
    design = np.concatenate([np.ones((N, 1)), x], axis=1)
    with jax.enable_x64(True):
        lj = log_joint(LINEAR_LAYER.apply)
        params = dense_zeros()
        # The largest precision reached is 241 (bias, 60 / 0.25 + 1 / 1.69): step 1 / 300 converges.
        algo = online(lj, "laplace_diag", optimizer=optax.sgd(1.0 / 300), num_inner_steps=1500)
        state = chain(stream(algo, params, (x, y), 10).state)
        mean, cov = bj.linear.posterior(design, y, NOISE, PRIOR)
        assert rel_err(flat(state.mean), mean) < 1e-8
        assert rel_err(covariance_of(lj, state), cov) < 1e-8


def test_the_sequential_elbo_is_stationary_at_the_exact_posterior(orthogonal_batches):
    """With q_{t|t-1} the exact posterior of batches 1-2 (diagonal here), the exact posterior of batches 1-3 is
    the optimum of ELBO_3 (likelihood-tempered target): its gradient is zero within Monte Carlo error."""
    x, y = orthogonal_batches
    design = np.concatenate([np.ones((N, 1)), x], axis=1)

    def dense(v):
        return {"Dense_0": {"bias": v[:1], "kernel": v[1:, None]}}

    with jax.enable_x64(True):
        lj = log_joint(LINEAR_LAYER.apply, 0.5, "likelihood")
        before = bj.linear.posterior(design[:20], y[:20], NOISE, PRIOR, 0.5, "likelihood")
        after = bj.linear.posterior(design[:30], y[:30], NOISE, PRIOR, 0.5, "likelihood")
        family = meanfield.family()

        def gradient(key, mean, stddev):
            phi = (dense(mean), dense(scales.unconstrained(stddev, "softplus")))
            grads = jax.grad(vi.elbo, argnums=1)(
                key, phi, (x[20:30], y[20:30]), log_joint=lj, family=family, predicted_mean=dense(before[0]),
                predicted_stddev=dense(jnp.sqrt(jnp.diag(before[1]))), c_lik=2.0)
            return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(grads)])

        per_draw = jax.jit(jax.vmap(gradient, (0, None, None)))
        keys = jax.random.split(jax.random.key(0), 4000)
        stddev = jnp.sqrt(jnp.diag(after[1]))
        draws = np.asarray(per_draw(keys, after[0], stddev))
        off = np.asarray(per_draw(keys, after[0] + 0.1 * stddev, 1.1 * stddev))
    z = np.mean(draws, 0) / (np.std(draws, 0) / np.sqrt(draws.shape[0]))
    z_off = np.mean(off, 0) / (np.std(off, 0) / np.sqrt(off.shape[0]))
    print("z-scores of the ELBO gradient at the exact posterior", z.round(2), "\n0.1 std / 10% off", z_off.round(1))
    assert np.all(np.abs(z) < 4) and np.all(np.abs(z_off) > 6)


def test_sequential_vi_approaches_the_exact_posterior(orthogonal_batches):
    """End to end, with finite Adam steps: close to the oracle (the objective itself is checked above)."""
    x, y = orthogonal_batches
    design = np.concatenate([np.ones((N, 1)), x], axis=1)
    with jax.enable_x64(True):
        lj = log_joint(LINEAR_LAYER.apply)
        algo = online(lj, "vi", optimizer=optax.adam(optax.cosine_decay_schedule(0.1, 300)), num_inner_steps=300,
                      num_mc_samples=8)
        state = chain(stream(algo, dense_zeros(), (x, y), 10).state)
        mean, cov = (np.asarray(a) for a in bj.linear.posterior(design, y, NOISE, PRIOR))
    z = (flat(state.mean) - mean) / np.sqrt(np.diag(cov))
    ratio = np.logaddexp(flat(state.rho), 0.0) ** 2 / np.diag(cov)  # softplus, in float64
    print("VI: z-scores of the means", z.round(3), "variance ratios", ratio.round(3))
    # Adam's finite-step error was |z| <= 0.15 and variance ratios in [0.92, 1.06] over 3 seeds; the prior
    # (the first belief) is 5 to 80 posterior standard deviations away.
    assert np.all(np.abs(z) < 0.3) and np.all(np.abs(ratio - 1.0) < 0.15)


def test_samples_have_the_belief_moments(correlated):
    x, y = correlated
    with jax.enable_x64(True):
        lj = log_joint(linear_apply)
        post = stream(online(lj, "ekf", structure="full"), {"w": jnp.zeros(D)}, (x, y), 15)
        draws = np.asarray(post.sample(jax.random.key(0), 20_000)["w"])
        again = np.asarray(post.sample(jax.random.key(0), 20_000)["w"])
        mean, cov = (np.asarray(a) for a in bj.linear.posterior(x, y, NOISE, PRIOR))
    num = draws.shape[0]
    z_mean = (draws.mean(0) - mean) / np.sqrt(np.diag(cov) / num)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / num)
    assert np.all(np.abs(z_mean) < 4) and np.all(np.abs((np.cov(draws.T) - cov) / se_cov) < 4)
    np.testing.assert_array_equal(draws, again)


# --------------------------------------------------------------------------- drift and forgetting
STEPS, B, NOISE_DRIFT, DRIFT = 40, 10, 0.3, 0.1


def drifting_regression(drift, seed=0):
    """y = x^T w_t + noise with w_t a random walk (std ``drift`` per batch), batches of B."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=D) + np.cumsum(drift * rng.normal(size=(STEPS, D)), axis=0)
    x = rng.normal(size=(STEPS, B, D))
    y = np.einsum("tbd,td->tb", x, w) + NOISE_DRIFT * rng.normal(size=(STEPS, B))
    return x.reshape(-1, D), y.reshape(-1)


def kalman_filter(x, y, process_noise, gamma):
    """The forgetting recursion in NumPy: P <- P0 + gamma (P - P0), Sigma <- Sigma + q I, then Kalman's update."""
    prior = np.eye(D)
    mean, precision = np.zeros(D), prior.copy()
    for t in range(STEPS):
        precision = prior + gamma * (precision - prior)
        precision = np.linalg.inv(np.linalg.inv(precision) + process_noise * np.eye(D))
        xt, yt = x[t * B:(t + 1) * B], y[t * B:(t + 1) * B]
        new = precision + xt.T @ xt / NOISE_DRIFT**2
        mean = np.linalg.solve(new, precision @ mean + xt.T @ yt / NOISE_DRIFT**2)
        precision = new
    return mean, precision


def test_forgetting_tracks_drift_and_costs_little_without_it():
    streams = {"drifting": drifting_regression(DRIFT), "static": drifting_regression(0.0)}
    settings = {"none": {}, "gamma=0.8": {"forgetting": 0.8}, f"q={DRIFT**2:g}": {"process_noise": DRIFT**2}}
    nll = {}
    with jax.enable_x64(True):
        lj = bj.log_joint(linear_apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(NOISE_DRIFT),
                          num_data=STEPS * B)
        for name, options in settings.items():
            algo = online(lj, "ekf", structure="full", **options)
            for kind, (x, y) in streams.items():
                post = bj.run(jax.random.key(0), algo, {"w": jnp.zeros(D)}, (x, y), num_steps=STEPS,
                              batch_size=B, shuffle=False, progress=False)
                nll[kind, name] = -float(post.info.log_predictive.sum()) / (STEPS * B)
                # The filter is the forgetting recursion exactly.
                mean, precision = kalman_filter(x, y, options.get("process_noise", 0.0),
                                                options.get("forgetting", 1.0))
                state = chain(post.state)
                assert rel_err(state.mean["w"], mean) < 1e-10
                assert rel_err(np.linalg.inv(covariance_of(lj, state)), precision) < 1e-10
    for kind in streams:
        print(f"{kind:>9} stream, prequential NLL per example: "
              + ", ".join(f"{name} {nll[kind, name]:.3f}" for name in settings))
    for name in list(settings)[1:]:
        gain = nll["drifting", "none"] - nll["drifting", name]
        cost = nll["static", name] - nll["static", "none"]
        assert gain > 0, f"{name}: forgetting must help on the drifting stream"
        assert 0 <= cost < gain / 4, f"{name}: on a static stream forgetting costs a little, far less than it gains"


# --------------------------------------------------------------------------- input checks
@pytest.fixture(scope="module")
def lj32():
    return bj.log_joint(linear_apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(1.0), num_data=10)


@pytest.mark.parametrize("method,options,error,match", [
    ("kalman", {}, ValueError, "method must be one of"),
    ("ekf", {"forgetting": 0.0}, ValueError, r"forgetting \(gamma\) must be a scalar in \(0, 1\]"),
    ("vi", {"forgetting": 1.5}, ValueError, r"in \(0, 1\]"),
    ("ekf", {"process_noise": -1.0}, ValueError, "process_noise must be finite and >= 0"),
    ("laplace_kfac", {"process_noise": 1e-3}, ValueError, "cannot be represented by a Kronecker"),
    ("ekf", {"structure": "lowrank"}, ValueError, "structure must be one of"),
    ("ekf", {"likelihood_weight": -1.0}, ValueError, "likelihood_weight must be finite and > 0"),
    ("ekf", {"predictive": "exact"}, ValueError, "predictive must be one of"),
    ("laplace_diag", {"num_predictive_samples": 0}, ValueError, "num_predictive_samples must be an integer"),
    ("laplace_diag", {"num_inner_steps": 0}, ValueError, "num_inner_steps must be an integer"),
    ("laplace_diag", {"optimizer": "newton"}, ValueError, "optimizer must be 'gauss_newton' or an optax"),
    ("vi", {"optimizer": "adam"}, ValueError, "optimizer must be an optax"),
    ("vi", {"parametrization": "exp"}, ValueError, "parametrization must be one of"),
    ("ekf", {"num_inner_steps": 3}, TypeError, r"online method 'ekf' does not take \['num_inner_steps'\]"),
    ("laplace_kfac", {"hessian": "diag"}, TypeError, "does not take"),
])
def test_bad_options_are_named(lj32, method, options, error, match):
    with pytest.raises(error, match=match):
        online(lj32, method, **options)


def test_the_target_must_be_a_log_joint_with_a_gaussian_prior(lj32):
    with pytest.raises(TypeError, match="needs a LogJoint"):
        online(lambda params, batch: 0.0, "ekf")
    laplace_prior = bj.log_joint(linear_apply, bj.priors.laplace(1.0), bj.likelihoods.gaussian(1.0), num_data=10)
    with pytest.raises(ValueError, match="needs a Gaussian prior"):
        online(laplace_prior, "laplace_diag")
