"""``LaplacePosterior``: the posterior data of :mod:`.posterior` with its functions as methods.

The data type and the functions of it (:mod:`.factorization`,
:mod:`.sampling`, :mod:`.glm`, :mod:`.marglik`) import nothing from here;
this module imports them all and offers each as a thin, jitted method, so
``bj.laplace(...)`` returns one object a user can sample, predict with and
tune.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from bayesjax.checks import check_key
from bayesjax.inference.laplace import factorization, glm, marglik, sampling
from bayesjax.inference.laplace.posterior import PosteriorData, register
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive, predictive
from bayesjax.types import Array, Params, PRNGKey

_samples_from_noise = jax.jit(sampling.samples_from_noise)
_marginal_variance = jax.jit(factorization.marginal_variance)
_precision_matrix = jax.jit(factorization.precision_matrix)
_covariance = jax.jit(factorization.covariance)
_functional_covariance = jax.jit(glm.functional_covariance)
_log_marginal_likelihood = jax.jit(marglik.log_marginal_likelihood)


@register
class LaplacePosterior(PosteriorData):
    """A Laplace approximation ``N(mean, P^{-1})``; built by :func:`bayesjax.laplace`.

    The fields are those of :class:`~.posterior.PosteriorData`: ``mean`` (the
    MAP), ``curvature`` (the summed likelihood GGN or Fisher, diag / KFAC /
    full), ``prior_precision`` (Delta, per leaf of the Bayesian subset),
    ``likelihood_weight`` and ``prior_weight`` (the tempering factors, so
    ``P = c_lik K + c_prior Delta``), ``num_data``, ``num_seen``, ``hessian``,
    ``subset`` and the ``log_joint`` it was fitted on. A pytree: its arrays
    are leaves, its configuration is static, so it passes through
    ``jax.jit``, and its methods are jitted.
    """

    def sample(self, key: PRNGKey, num_samples: int) -> Params:
        """``num_samples`` draws; leaves gain a leading axis (feed ``bj.predictive``).

        Example:
          >>> post = bj.laplace(lj, params_map, (x, y), hessian="diag")
          >>> pred = bj.predictive(model.apply, post.sample(key, 100), x_test, lj.likelihood)
        """
        check_key(key)
        num_samples = int(num_samples)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        return _samples_from_noise(self, sampling.standard_normal(self, key, num_samples))

    def marginal_variance(self) -> Params:
        """Diagonal of the posterior covariance, a tree like the Bayesian parameters."""
        return _marginal_variance(self)

    def precision_matrix(self) -> Array:
        """The dense posterior precision ``[D, D]`` in ``ravel_pytree`` order (small models)."""
        return _precision_matrix(self)

    def covariance(self) -> Array:
        """The dense posterior covariance ``[D, D]`` (small models)."""
        return _covariance(self)

    def functional_covariance(self, x: Array) -> tuple[Array, Array]:
        """The linearized (GLM) function-space posterior at inputs ``x``.

        ``f(x) ~ N(f(x; mean), J(x) P^{-1} J(x)^T)`` with ``J`` the Jacobian of
        the outputs with respect to the Bayesian parameters.

        Returns:
          ``(f_mean [N, K], f_cov [N, K, K])``.
        """
        return _functional_covariance(self, jnp.asarray(x))

    def predictive_glm(self, x: Array, link: str = "probit", *, key: PRNGKey | None = None,
                       num_samples: int = 100) -> ClassificationPredictive | RegressionPredictive:
        """GLM (linearized) predictive; see :func:`.glm.predictive_glm`."""
        return glm.predictive_glm(self, x, link, key=key, num_samples=num_samples)

    def predictive(self, key: PRNGKey, x: Array,
                   num_samples: int = 100) -> ClassificationPredictive | RegressionPredictive:
        """Monte Carlo predictive: ``bj.predictive`` over ``num_samples`` weight draws."""
        return predictive(self.log_joint.apply, self.sample(key, num_samples), x, self.log_joint.likelihood)

    def log_marginal_likelihood(self, prior_precision=None, noise_std=None) -> Array:
        """Laplace log evidence; see :func:`.marglik.log_marginal_likelihood`."""
        return _log_marginal_likelihood(self, prior_precision, noise_std)

    def with_prior_precision(self, prior_precision) -> LaplacePosterior:
        """The same curvature with another prior precision (scalar, or a tree like the subset)."""
        return factorization.with_prior_precision(self, prior_precision)

    def optimize_prior_precision(self, method: str = "marglik", **kwargs) -> LaplacePosterior:
        """Tunes the prior precision Delta (and a Gaussian likelihood's noise); returns a new posterior.

        The MAP and the curvature stay; only Delta (and the noise) change, so
        tuning costs no pass over the training data.

        * ``"marglik"`` (MacKay 1992; Immer et al. 2021) maximizes the
          Laplace log evidence :meth:`log_marginal_likelihood` over log
          precisions with Adam (``num_steps`` steps of ``learning_rate``, one
          ``lax.scan``): one precision for all weights, or with ``per_layer``
          one per top-level module (``Dense_0``, ...); with ``tune_noise``
          also the observation noise of a Gaussian likelihood.
        * ``"gridsearch"`` picks from ``grid`` the scalar precision whose GLM
          predictive (``link``) has the lowest negative log-likelihood on
          held-out ``(x_val, y_val)``: tuning for prediction rather than for
          the evidence, which often prefers a much weaker prior.

        Args:
          method: ``"marglik"`` or ``"gridsearch"``.
          **kwargs: the method's keywords, listed below
            (:func:`.marglik.optimize_prior_precision` is the function behind).

        Keyword Args:
          per_layer (bool): ``"marglik"``: one precision per top-level module
            (its kernel and bias share it) instead of one for all. Default False.
          tune_noise (bool): ``"marglik"``: also tune the Gaussian
            likelihood's noise (the returned posterior's log-joint then has
            ``bj.likelihoods.gaussian`` at the tuned noise). Default False.
          num_steps (int): ``"marglik"``: Adam steps. Default 200.
          learning_rate (float): ``"marglik"``: Adam's learning rate on the log
            precisions. Default 0.1.
          x_val (Array): ``"gridsearch"``: held-out inputs (required).
          y_val (Array): ``"gridsearch"``: held-out targets (required).
          grid (Array): ``"gridsearch"``: candidate precisions. Default
            ``logspace(-4, 4, 33)``.
          link (str): ``"gridsearch"``: the GLM predictive's link,
            ``"probit"``, ``"bridge"`` or ``"mc"``. Default ``"probit"``.
          num_samples (int): ``"gridsearch"``: draws of the ``"mc"`` link.
            Default 100.

        Returns:
          A new :class:`LaplacePosterior` with the tuned prior precision.

        Example:
          >>> post = bj.laplace(lj, params_map, (x, y), hessian="diag")
          >>> tuned = post.optimize_prior_precision(per_layer=True)
          >>> bool(tuned.log_marginal_likelihood() >= post.log_marginal_likelihood())
          True
          >>> tuned = post.optimize_prior_precision("gridsearch", x_val=x_test, y_val=y_test)
        """
        return marglik.optimize_prior_precision(self, method, **kwargs)
