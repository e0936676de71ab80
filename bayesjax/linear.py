"""Closed-form Bayesian linear regression: the exact oracle.

Model (no bias term; append a column of ones to ``X`` for one)::

    y = X w + eps,    eps ~ N(0, noise_std^2 I_N),    w ~ N(0, prior_std^2 I_D).

Writing ``beta = 1 / noise_std^2`` and ``alpha = 1 / prior_std^2``, the
posterior is Gaussian (Bishop 2006, PRML eqs. 3.53-3.54)::

    A     = beta X^T X + alpha I_D          (posterior precision)
    Sigma = A^{-1}
    m     = beta Sigma X^T y

Every inference method in bayesjax is tested against these formulas, so they
are computed with Cholesky factorizations only (never an explicit inverse of
anything but the final covariance, which is itself obtained by a Cholesky
solve against the identity).

All functions are pure JAX and jittable. Hyperparameters (``noise_std``,
``prior_std``, ``temperature``) may be traced; they are checked for
positivity only when they are concrete (Python numbers or concrete arrays).
``tempering`` must be a static string. Results follow the dtype of ``X`` and
``y`` (float64 when ``jax_enable_x64`` is on and float64 data are passed).

Reference:
    C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer 2006,
    §3.3 (Bayesian linear regression) and §3.5 (the evidence approximation).
    F. Wenzel et al., "How Good is the Bayes Posterior in Deep Neural Networks
    Really?", ICML 2020 (tempered posteriors).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_factor, cho_solve

from bayesjax.checks import concrete

__all__ = ["posterior", "predictive", "log_evidence"]

_TEMPERINGS = ("posterior", "likelihood")


# --------------------------------------------------------------------------- #
# Validation helpers
# --------------------------------------------------------------------------- #
def _check_scalar(name, value, *, allow_zero=False):
    if jnp.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(value)}.")
    v = concrete(value)
    if v is None:
        return
    if not np.isfinite(v) or (v < 0 if allow_zero else v <= 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {v}.")


def _check_data(X, y):
    X = jnp.asarray(X)
    y = jnp.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must have shape [N, D], got shape {X.shape}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must have shape [N] or [N, 1] with N = X.shape[0]; "
            f"got X.shape={X.shape}, y.shape={y.shape}."
        )
    dtype = jnp.result_type(X.dtype, y.dtype, jnp.float32)
    return X.astype(dtype), y.astype(dtype)


def _posterior_mean(X, y, noise_var, prior_var):
    """Posterior mean and Cholesky factor of the precision for given variances."""
    D = X.shape[1]
    precision = X.T @ X / noise_var + jnp.eye(D, dtype=X.dtype) / prior_var
    chol = cho_factor(precision, lower=True)
    mean = cho_solve(chol, X.T @ y) / noise_var
    return mean, chol


def _gaussian_posterior(X, y, noise_var, prior_var):
    """Untempered posterior for given variances; returns (mean, cov)."""
    mean, chol = _posterior_mean(X, y, noise_var, prior_var)
    cov = cho_solve(chol, jnp.eye(X.shape[1], dtype=X.dtype))
    cov = 0.5 * (cov + cov.T)  # exact symmetry for downstream Cholesky/sampling
    return mean, cov


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
def posterior(X, y, noise_std, prior_std, temperature=1.0, tempering="posterior"):
    r"""Exact (optionally tempered) Gaussian posterior over the weights.

    Untempered (T = 1), with :math:`\beta = 1/\sigma^2` (``noise_std``) and
    :math:`\alpha = 1/\sigma_0^2` (``prior_std``), PRML eqs. 3.53-3.54::

        A     = X^T X / sigma^2 + I / sigma_0^2
        Sigma = A^{-1}
        m     = Sigma X^T y / sigma^2

    Tempering at temperature ``T`` (same conventions as ``bj.log_joint``):

    * ``"posterior"`` (Wenzel et al. 2020): target
      :math:`p(D|w)^{1/T} p(w)^{1/T}`. The log density of the untempered
      Gaussian posterior is divided by ``T``, so::

          A_T = A / T,    Sigma_T = T Sigma,    m_T = m.

    * ``"likelihood"``: target :math:`p(D|w)^{1/T} p(w)`, i.e. the
      likelihood's noise variance is inflated to ``T sigma^2``::

          A_T     = X^T X / (T sigma^2) + I / sigma_0^2
          Sigma_T = A_T^{-1}
          m_T     = Sigma_T X^T y / (T sigma^2).

    Both reduce to the untempered posterior at ``T = 1``. The precision is
    factorized with a Cholesky decomposition; no matrix is inverted directly.

    Args:
      X: Design matrix, shape ``[N, D]``.
      y: Targets, shape ``[N]`` (``[N, 1]`` is squeezed).
      noise_std: Observation noise standard deviation ``sigma`` (> 0).
      prior_std: Prior standard deviation ``sigma_0`` of each weight (> 0).
      temperature: ``T > 0``; may be a tracer (then it is not checked).
      tempering: ``"posterior"`` or ``"likelihood"`` (static).

    Returns:
      ``(mean, cov)`` with shapes ``[D]`` and ``[D, D]``.

    Raises:
      ValueError: On bad shapes, unknown ``tempering``, or a concrete
        non-positive ``noise_std``, ``prior_std`` or ``temperature``.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax import linear
      >>> X = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
      >>> y = jnp.array([1.0, 2.0, 3.0])
      >>> mean, cov = linear.posterior(X, y, noise_std=0.5, prior_std=1.0)
      >>> mean.shape, cov.shape
      ((2,), (2, 2))

    References:
      Bishop (2006), PRML §3.3.1; Wenzel et al. (2020), ICML.
    """
    if tempering not in _TEMPERINGS:
        raise ValueError(f"tempering must be one of {_TEMPERINGS}, got {tempering!r}.")
    X, y = _check_data(X, y)
    _check_scalar("noise_std", noise_std)
    _check_scalar("prior_std", prior_std)
    _check_scalar("temperature", temperature)
    dtype = X.dtype
    noise_var = jnp.asarray(noise_std, dtype) ** 2
    prior_var = jnp.asarray(prior_std, dtype) ** 2
    T = jnp.asarray(temperature, dtype)
    if tempering == "posterior":
        mean, cov = _gaussian_posterior(X, y, noise_var, prior_var)
        return mean, T * cov
    return _gaussian_posterior(X, y, T * noise_var, prior_var)


def predictive(mean, cov, X_star, noise_std):
    r"""Posterior predictive of a Gaussian weight posterior (PRML eqs. 3.58-3.59).

    For a weight posterior :math:`N(w | m, \Sigma)` and a test input ``x``::

        p(y* | x, D) = N(y* | m^T x,  sigma^2 + x^T Sigma x)

    where ``sigma^2`` is the *observation noise* variance (``noise_std**2``).
    Note: the seed slides write this aleatoric term as :math:`\sigma_0^2`;
    that is a typo, the prior variance does not enter the predictive
    variance except through ``Sigma``.

    Pass ``noise_std=0`` to get only the epistemic variance
    ``x^T Sigma x`` of the latent function ``f(x) = w^T x``.

    Args:
      mean: Posterior mean ``m``, shape ``[D]``.
      cov: Posterior covariance ``Sigma``, shape ``[D, D]``.
      X_star: Test inputs, shape ``[M, D]``.
      noise_std: Observation noise standard deviation (>= 0).

    Returns:
      ``(mean, var)`` of the predictive, each of shape ``[M]``.

    Raises:
      ValueError: On inconsistent shapes or a concrete negative ``noise_std``.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax import linear
      >>> mu, var = linear.predictive(jnp.zeros(2), jnp.eye(2), jnp.ones((3, 2)), 0.1)
      >>> var  # 0.1**2 + 2
      Array([2.01, 2.01, 2.01], dtype=float32)

    References:
      Bishop (2006), PRML §3.3.2.
    """
    mean = jnp.asarray(mean)
    cov = jnp.asarray(cov)
    X_star = jnp.asarray(X_star)
    if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(
            f"mean must have shape [D] and cov [D, D]; got mean.shape={mean.shape}, "
            f"cov.shape={cov.shape}."
        )
    if X_star.ndim != 2 or X_star.shape[1] != mean.shape[0]:
        raise ValueError(
            f"X_star must have shape [M, D] with D = {mean.shape[0]}; "
            f"got X_star.shape={X_star.shape}."
        )
    _check_scalar("noise_std", noise_std, allow_zero=True)
    dtype = jnp.result_type(mean.dtype, cov.dtype, X_star.dtype, jnp.float32)
    mean, cov, X_star = mean.astype(dtype), cov.astype(dtype), X_star.astype(dtype)
    pred_mean = X_star @ mean
    epistemic = jnp.einsum("md,de,me->m", X_star, cov, X_star)
    var = jnp.asarray(noise_std, dtype) ** 2 + epistemic
    return pred_mean, var


def log_evidence(X, y, noise_std, prior_std):
    r"""Log marginal likelihood :math:`\log N(y | 0, \sigma^2 I + \sigma_0^2 X X^T)`.

    Two algebraically equal formulations are used, picked from the static
    shapes so that the Cholesky factor is always of size ``min(N, D)``:

    * ``N <= D`` (N x N form): factor ``C = sigma^2 I_N + sigma_0^2 X X^T``
      with ``C = L L^T`` and compute::

          log p(y) = -1/2 ||L^{-1} y||^2 - sum_i log L_ii - N/2 log(2 pi).

    * ``N > D`` (D x D form, PRML eq. 3.86): with ``beta = 1/sigma^2``,
      ``alpha = 1/sigma_0^2``, ``A = alpha I + beta X^T X = L L^T`` and
      ``m = beta A^{-1} X^T y``::

          log p(y) = D/2 log alpha + N/2 log beta - E(m) - 1/2 log|A|
                     - N/2 log(2 pi),
          E(m)     = beta/2 ||y - X m||^2 + alpha/2 ||m||^2,
          log|A|   = 2 sum_i log L_ii.

      The determinant follows from the matrix determinant lemma
      ``|sigma^2 I_N + sigma_0^2 X X^T| = sigma^{2N} sigma_0^{2D} |A|`` and
      the quadratic form from Woodbury,
      ``y^T C^{-1} y = beta ||y - X m||^2 + alpha ||m||^2``. Writing it as a
      sum of two non-negative terms (rather than
      ``beta y^T y - beta^2 y^T X A^{-1} X^T y``) avoids cancellation.

    Args:
      X: Design matrix, shape ``[N, D]``.
      y: Targets, shape ``[N]`` (``[N, 1]`` is squeezed).
      noise_std: Observation noise standard deviation ``sigma`` (> 0).
      prior_std: Prior standard deviation ``sigma_0`` (> 0).

    Returns:
      The scalar log evidence.

    Raises:
      ValueError: On bad shapes or concrete non-positive standard deviations.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax import linear
      >>> X = jnp.ones((4, 1)); y = jnp.array([0.9, 1.1, 1.0, 1.2])
      >>> float(linear.log_evidence(X, y, 0.1, 1.0)) > float(
      ...     linear.log_evidence(X, y, 0.1, 1e-3))
      True

    References:
      Bishop (2006), PRML §3.5.1, eqs. 3.77-3.86.
    """
    X, y = _check_data(X, y)
    _check_scalar("noise_std", noise_std)
    _check_scalar("prior_std", prior_std)
    N, D = X.shape
    dtype = X.dtype
    noise_var = jnp.asarray(noise_std, dtype) ** 2
    prior_var = jnp.asarray(prior_std, dtype) ** 2
    log_2pi = jnp.log(jnp.asarray(2.0 * np.pi, dtype))
    if N <= D:
        C = noise_var * jnp.eye(N, dtype=dtype) + prior_var * (X @ X.T)
        L = jnp.linalg.cholesky(C)
        z = jax.scipy.linalg.solve_triangular(L, y, lower=True)
        return -0.5 * jnp.sum(z**2) - jnp.sum(jnp.log(jnp.diag(L))) - 0.5 * N * log_2pi
    mean, (L, _) = _posterior_mean(X, y, noise_var, prior_var)
    resid = y - X @ mean
    fit = 0.5 * jnp.sum(resid**2) / noise_var + 0.5 * jnp.sum(mean**2) / prior_var
    logdet_A = 2.0 * jnp.sum(jnp.log(jnp.diag(L)))
    return (
        -0.5 * D * jnp.log(prior_var)
        - 0.5 * N * jnp.log(noise_var)
        - fit
        - 0.5 * logdet_A
        - 0.5 * N * log_2pi
    )
