"""Tests for bayesjax.linear against brute-force NumPy/SciPy computations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bayesjax import linear

# float64 only inside these tests: the context manager is thread-local and is
# restored on exit, so other test modules keep running in float32.
if hasattr(jax, "enable_x64"):  # jax >= 0.8
    _enable_x64 = jax.enable_x64
else:  # older jax
    from jax.experimental import enable_x64 as _enable_x64

RTOL = 1e-8

# The oracle is checked under jit (as the rest of the library uses it): one
# compile per shape instead of op-by-op dispatch. Input validation is tested
# on the plain functions at the bottom of the file.
posterior = jax.jit(linear.posterior, static_argnames="tempering")
predictive = jax.jit(linear.predictive)
log_evidence = jax.jit(linear.log_evidence)


@pytest.fixture
def x64():
    with _enable_x64(True):
        yield


def _data(N, D, seed=0, noise_std=0.3, prior_std=1.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D))
    w = prior_std * rng.normal(size=D)
    y = X @ w + noise_std * rng.normal(size=N)
    return X, y


def _brute_posterior(X, y, noise_std, prior_std):
    D = X.shape[1]
    A = X.T @ X / noise_std**2 + np.eye(D) / prior_std**2
    cov = np.linalg.inv(A)
    return cov @ X.T @ y / noise_std**2, cov


def _close(actual, desired, rtol=RTOL):
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    atol = rtol * 1e-2 * np.max(np.abs(desired))  # for entries near zero
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)


SHAPES = [(50, 5), (5, 5), (3, 8), (1, 4)]


@pytest.mark.parametrize("N,D", SHAPES)
def test_posterior_matches_brute_force(x64, N, D):
    X, y = _data(N, D)
    mean, cov = posterior(jnp.asarray(X), jnp.asarray(y), 0.3, 1.5)
    assert mean.dtype == jnp.float64 and cov.dtype == jnp.float64
    assert mean.shape == (D,) and cov.shape == (D, D)
    m_ref, c_ref = _brute_posterior(X, y, 0.3, 1.5)
    _close(mean, m_ref)
    _close(cov, c_ref)
    np.testing.assert_array_equal(cov, cov.T)


@pytest.mark.parametrize("N,D", SHAPES)
def test_predictive_matches_brute_force(x64, N, D):
    X, y = _data(N, D)
    Xs = np.random.default_rng(1).normal(size=(7, D))
    m_ref, c_ref = _brute_posterior(X, y, 0.3, 1.5)
    mean, cov = posterior(X, y, 0.3, 1.5)
    mu, var = predictive(mean, cov, Xs, 0.3)
    assert mu.shape == (7,) and var.shape == (7,) and var.dtype == jnp.float64
    _close(mu, Xs @ m_ref)
    _close(var, 0.3**2 + np.einsum("md,de,me->m", Xs, c_ref, Xs))
    # noise_std=0: epistemic variance of the latent function only.
    _, epi = predictive(mean, cov, Xs, 0.0)
    _close(epi, np.einsum("md,de,me->m", Xs, c_ref, Xs))


@pytest.mark.parametrize("N,D", SHAPES + [(120, 3)])
@pytest.mark.parametrize("noise_std,prior_std", [(0.3, 1.5), (2.0, 0.1), (0.01, 10.0)])
def test_log_evidence_matches_scipy(x64, N, D, noise_std, prior_std):
    X, y = _data(N, D)
    ref = stats.multivariate_normal.logpdf(
        y, mean=np.zeros(N), cov=noise_std**2 * np.eye(N) + prior_std**2 * X @ X.T
    )
    got = log_evidence(X, y, noise_std, prior_std)
    assert got.shape == () and got.dtype == jnp.float64
    _close(got, ref)


def test_log_evidence_branches_agree(x64):
    # A zero column leaves the evidence unchanged but moves (N, D) = (6, 5),
    # the D x D form, to (6, 6), the N x N form.
    X, y = _data(6, 5)
    X_wide = np.concatenate([X, np.zeros((6, 1))], axis=1)  # N == D -> N x N form
    _close(log_evidence(X_wide, y, 0.4, 0.9), log_evidence(X, y, 0.4, 0.9))


@pytest.mark.parametrize("T", [0.1, 1.0, 3.0])
def test_posterior_tempering(x64, T):
    X, y = _data(30, 4)
    mean, cov = posterior(X, y, 0.3, 1.5)
    mean_t, cov_t = posterior(X, y, 0.3, 1.5, temperature=T, tempering="posterior")
    _close(mean_t, mean)
    _close(cov_t, T * cov)


@pytest.mark.parametrize("T", [0.1, 1.0, 3.0])
def test_likelihood_tempering_matches_brute_force(x64, T):
    X, y = _data(30, 4)
    D = X.shape[1]
    A = X.T @ X / (T * 0.3**2) + np.eye(D) / 1.5**2
    c_ref = np.linalg.inv(A)
    m_ref = c_ref @ X.T @ y / (T * 0.3**2)
    mean, cov = posterior(X, y, 0.3, 1.5, temperature=T, tempering="likelihood")
    _close(mean, m_ref)
    _close(cov, c_ref)


def test_temperature_one_is_untempered(x64):
    X, y = _data(20, 3)
    mean, cov = posterior(X, y, 0.3, 1.5)
    for tempering in ("posterior", "likelihood"):
        m1, c1 = posterior(X, y, 0.3, 1.5, temperature=1.0, tempering=tempering)
        _close(m1, mean)
        _close(c1, cov)


def test_jit_vmap_over_traced_hyperparameters(x64):
    X, y = _data(20, 3)
    Ts = jnp.array([0.5, 1.0, 2.0])

    @jax.jit
    def f(T, noise_std, prior_std):
        return posterior(X, y, noise_std, prior_std, T, tempering="likelihood")

    means, covs = jax.vmap(f, in_axes=(0, None, None))(Ts, 0.3, 1.5)
    assert means.shape == (3, 3) and covs.shape == (3, 3, 3)
    for i, T in enumerate([0.5, 1.0, 2.0]):
        m, c = posterior(X, y, 0.3, 1.5, T, tempering="likelihood")
        _close(means[i], m)
        _close(covs[i], c)
    ev = log_evidence(X, y, 0.3, 1.5)
    _close(ev, log_evidence(X, y, 0.3, 1.5))
    mu, var = predictive(means[1], covs[1], X, 0.3)
    assert mu.shape == var.shape == (20,)


@pytest.mark.parametrize("N,D", [(12, 3), (3, 5)])
def test_eager_matches_jit(x64, N, D):
    X, y = _data(N, D)
    for a, b in zip(linear.posterior(X, y, 0.3, 1.5, 2.0), posterior(X, y, 0.3, 1.5, 2.0)):
        _close(a, b, rtol=1e-12)
    m, c = linear.posterior(X, y, 0.3, 1.5)
    for a, b in zip(linear.predictive(m, c, X, 0.3), predictive(m, c, X, 0.3)):
        _close(a, b, rtol=1e-12)
    _close(linear.log_evidence(X, y, 0.3, 1.5), log_evidence(X, y, 0.3, 1.5), rtol=1e-12)


def test_y_column_is_squeezed(x64):
    X, y = _data(10, 3)
    for a, b in zip(posterior(X, y, 0.3, 1.5), posterior(X, y[:, None], 0.3, 1.5)):
        np.testing.assert_array_equal(a, b)
    assert log_evidence(X, y[:, None], 0.3, 1.5) == log_evidence(X, y, 0.3, 1.5)


def test_float32_default_mode():
    # Outside the x64 context, float32 inputs stay float32 and are accurate.
    X, y = _data(50, 4)
    mean, cov = posterior(X.astype(np.float32), y.astype(np.float32), 0.3, 1.5)
    assert mean.dtype == jnp.float32 and cov.dtype == jnp.float32
    m_ref, c_ref = _brute_posterior(X, y, 0.3, 1.5)
    np.testing.assert_allclose(mean, m_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cov, c_ref, rtol=1e-3, atol=1e-6)


def test_log_evidence_maximized_near_truth(x64):
    noise_true, prior_true = 0.3, 1.5
    X, y = _data(500, 20, seed=3, noise_std=noise_true, prior_std=prior_true)
    # Grid in factors of sqrt(2); the truth sits on the grid.
    factors = 2.0 ** (np.arange(-4, 5) / 2)
    noises, priors = noise_true * factors, prior_true * factors
    grid = jax.vmap(
        jax.vmap(lambda s, a: log_evidence(X, y, s, a), in_axes=(None, 0)),
        in_axes=(0, None),
    )(jnp.asarray(noises), jnp.asarray(priors))
    i, j = np.unravel_index(np.argmax(np.asarray(grid)), grid.shape)
    center = len(factors) // 2
    assert abs(i - center) <= 1, (noises[i], noise_true)
    assert abs(j - center) <= 1, (priors[j], prior_true)


# --------------------------------------------------------------------------- #
# Bad inputs
# --------------------------------------------------------------------------- #
X_OK, Y_OK = _data(10, 3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(noise_std=0.0), "noise_std"),
        (dict(noise_std=-1.0), "noise_std"),
        (dict(noise_std=float("nan")), "noise_std"),
        (dict(prior_std=0.0), "prior_std"),
        (dict(prior_std=jnp.array(-2.0)), "prior_std"),
        (dict(noise_std=np.ones(2)), "noise_std"),
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature=jnp.array(0.0)), "temperature"),
        (dict(tempering="prior"), "tempering"),
        (dict(X=X_OK[0]), r"X must have shape \[N, D\], got shape \(3,\)"),
        (dict(y=Y_OK[:-1]), r"X.shape=\(10, 3\), y.shape=\(9,\)"),
        (dict(y=np.ones((10, 2))), r"y.shape=\(10, 2\)"),
    ],
)
def test_posterior_bad_inputs(kwargs, match):
    args = dict(X=X_OK, y=Y_OK, noise_std=0.3, prior_std=1.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        linear.posterior(**args)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(noise_std=0.0), "noise_std"),
        (dict(prior_std=-1.0), "prior_std"),
        (dict(y=Y_OK[:-1]), r"y.shape=\(9,\)"),
        (dict(X=X_OK[None]), r"got shape \(1, 10, 3\)"),
    ],
)
def test_log_evidence_bad_inputs(kwargs, match):
    args = dict(X=X_OK, y=Y_OK, noise_std=0.3, prior_std=1.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        linear.log_evidence(**args)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(noise_std=-0.1), "noise_std"),
        (dict(mean=np.zeros((3, 1))), r"mean.shape=\(3, 1\)"),
        (dict(cov=np.eye(2)), r"cov.shape=\(2, 2\)"),
        (dict(X_star=np.ones((4, 2))), r"X_star.shape=\(4, 2\)"),
        (dict(X_star=np.ones(3)), r"X_star.shape=\(3,\)"),
    ],
)
def test_predictive_bad_inputs(kwargs, match):
    args = dict(mean=np.zeros(3), cov=np.eye(3), X_star=np.ones((4, 3)), noise_std=0.3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        linear.predictive(**args)
