"""The tempered log-joint: prior x likelihood, minibatch-scaled.

For a minibatch B of a data set of size N, the unbiased estimate of the
log-likelihood is (N / |B|) sum_{i in B} log p(y_i | f(x_i; theta)). Temperature
T belongs to the target and is defined here once for every method:

* ``tempering="posterior"`` (Wenzel et al. 2020, "How good is the Bayes
  posterior in deep neural networks really?"):
  log p_T(theta | D) = [log p(D | theta) + log p(theta)] / T
* ``tempering="likelihood"``: log p_T(theta | D) = log p(D | theta) / T + log p(theta)

T < 1 is a cold posterior. T may be a traced array, so a sweep over
temperatures is one ``jax.vmap``. Methods that weigh the two terms
themselves (Laplace, online learning, VI) read the factors of this rule from
:attr:`LogJoint.likelihood_weight` and :attr:`LogJoint.prior_weight`; the
temperature diagnostics read the energy :meth:`LogJoint.potential`, and
step sizes and optimizers meet the gradient of the per-example
:meth:`LogJoint.loss` ``U / N`` (the same scale at every N and T).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from bayesjax.checks import check_int, check_positive
from bayesjax.chunking import scan_chunks
from bayesjax.likelihoods import Likelihood
from bayesjax.models.model import Model
from bayesjax.priors import Prior
from bayesjax.types import ApplyFn, Array, Batch, Params

TEMPERINGS = ("posterior", "likelihood")


@dataclasses.dataclass(frozen=True, eq=False)
class LogJoint:
    """A tempered log-joint ``(params, batch) -> scalar`` that keeps its parts.

    Methods that need curvature or the observation model (Laplace, EKF, the
    GLM predictive) read ``apply``, ``prior`` and ``likelihood`` from it.
    ``model`` is the :class:`~bayesjax.models.Model` it was built from, if
    any: a model with a training mode (BatchNorm, dropout) makes every
    method carry its state (:mod:`bayesjax.model_state`). Build it with
    :func:`log_joint`.
    """

    apply: ApplyFn
    prior: Prior
    likelihood: Likelihood
    num_data: int
    temperature: float | Array
    tempering: str
    model: Model | None = None

    def log_likelihood(self, params: Params, batch: Batch) -> Array:
        """Unbiased minibatch estimate (N / |B|) sum_i log p(y_i | x_i, params), untempered."""
        x, y = batch
        log_probs = self.likelihood.log_prob(self.apply(params, x), y)
        return self.num_data * jnp.mean(log_probs)

    def log_prior(self, params: Params) -> Array:
        """log p(params), untempered."""
        return self.prior.log_prob(params)

    def __call__(self, params: Params, batch: Batch) -> Array:
        """The tempered log-joint estimate on ``batch``."""
        return self.combine(self.log_likelihood(params, batch), self.log_prior(params))

    def combine(self, log_likelihood: Array, log_prior: Array) -> Array:
        """Applies the tempering rule to untempered log-likelihood and log-prior values.

        This is the one place the rule is written; it is linear,

            combine(l, p) = likelihood_weight * l + prior_weight * p,

        and :attr:`likelihood_weight` and :attr:`prior_weight` read its factors.
        """
        if self.tempering == "posterior":
            return (log_likelihood + log_prior) / self.temperature
        return log_likelihood / self.temperature + log_prior

    @property
    def likelihood_weight(self) -> float | Array:
        """The factor on the untempered log-likelihood in :meth:`combine`: ``1 / T`` under either tempering."""
        return self.combine(1.0, 0.0)

    @property
    def prior_weight(self) -> float | Array:
        """The factor on the log-prior in :meth:`combine`: ``1 / T`` (``"posterior"``) or 1 (``"likelihood"``)."""
        return self.combine(0.0, 1.0)

    def potential(self, params: Params, batch: Batch) -> Array:
        """The potential energy ``U = -T log p_T(params | batch)``, so that ``p_T ∝ exp(-U / T)``.

        ``U = -(log p(D | params) + log p(params))`` under posterior tempering,
        ``-(log p(D | params) + T log p(params))`` under likelihood tempering
        (both minibatch estimates, like :meth:`__call__`).
        """
        return -self.temperature * self(params, batch)

    def loss(self, params: Params, batch: Batch) -> Array:
        """The per-example loss ``U / N``: what step sizes and optimizers meet.

        Under posterior tempering it is the batch's mean negative
        log-likelihood minus ``log p(params) / N``, the familiar training loss
        with weight decay; its gradient keeps its scale at every data size N
        and every temperature. SG-MCMC learning rates (``lr = eps N``) and the
        optax optimizers of MAP, SWA(G) and ensembles step along ``-grad loss``.
        """
        return self.potential(params, batch) / self.num_data

    def value_and_loss_grad(self, params: Params, batch: Batch) -> tuple[Array, Params]:
        """The tempered log-joint estimate and ``grad`` of :meth:`loss`, from one backward pass."""
        loss, grad = jax.value_and_grad(self.loss)(params, batch)
        return -loss * self.num_data / self.temperature, grad

    def summed_log_likelihood(self, params: Params, batch: Batch, keep: Array | None = None) -> Array:
        """sum_i log p(y_i | x_i, params) over the batch's rows (those where ``keep``), untempered and unscaled."""
        x, y = batch
        log_probs = self.likelihood.log_prob(self.apply(params, x), y)
        return jnp.sum(log_probs if keep is None else jnp.where(keep, log_probs, 0.0))

    def _check_full(self, data: Batch) -> None:
        n = jax.tree.leaves(data)[0].shape[0]
        if n != self.num_data:
            raise ValueError(f"a full-data pass needs all {self.num_data} examples, got {n}")

    def full(self, params: Params, data: Batch, chunk_size: int = 1024) -> Array:
        """Exact tempered log-joint on the whole data set, summed over contiguous chunks.

        Args:
          params: parameters.
          data: ``(x, y)`` with ``len(x) == num_data``.
          chunk_size: examples per forward pass; bounds memory (no padded copy of the data is made).
        """
        self._check_full(data)
        log_likelihood = scan_chunks(lambda total, chunk, keep: total + self.summed_log_likelihood(params, chunk, keep),
                                     jnp.zeros((), jnp.result_type(float)), data, chunk_size)
        return self.combine(log_likelihood, self.log_prior(params))

    def full_potential_grad(self, params: Params, data: Batch, chunk_size: int = 1024) -> Params:
        """grad U(params) on the whole data set (:meth:`potential`), accumulated over contiguous chunks.

        The log-likelihood's gradient is folded chunk by chunk, so one chunk's
        forward and backward pass is alive at a time, then joined with the
        prior's by the tempering rule (:meth:`combine`, linear, so it applies
        to gradients leaf by leaf).
        """
        self._check_full(data)

        def fold(total, chunk, keep):
            piece = jax.grad(self.summed_log_likelihood)(params, chunk, keep)
            return jax.tree.map(lambda t, g: t + g.astype(t.dtype), total, piece)

        grad_likelihood = scan_chunks(fold, jax.tree.map(jnp.zeros_like, params), data, chunk_size)
        grad_prior = jax.grad(self.log_prior)(params)
        return jax.tree.map(lambda g_lik, g_prior: -self.temperature * self.combine(g_lik, g_prior),
                            grad_likelihood, grad_prior)


def log_joint(
    apply: ApplyFn | Model,
    prior: Prior,
    likelihood: Likelihood,
    num_data: int,
    temperature: float | Array = 1.0,
    tempering: str = "posterior",
) -> LogJoint:
    """Builds the tempered, minibatch-scaled log-joint.

    Args:
      apply: pure model ``apply(params, x) -> outputs``, or a
        :class:`~bayesjax.models.Model`: its ``apply``, and for a model with
        a training mode (BatchNorm statistics, dropout) its ``train_apply``
        in every method's steps. Pass the Model for such a network: its
        ``apply`` alone is the evaluation mode, and trains without dropout.
      prior: a :class:`bayesjax.priors.Prior`.
      likelihood: a :class:`bayesjax.likelihoods.Likelihood`.
      num_data: N, the size of the full training set (> 0).
      temperature: T > 0, a scalar; may be traced (then only its shape is
        checked).
      tempering: ``"posterior"`` or ``"likelihood"`` (see module docstring).

    Returns:
      A :class:`LogJoint`, callable as ``(params, (x, y)) -> scalar``.

    Example:
      >>> lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(),
      ...                   num_data=len(x), temperature=0.1)
      >>> batch = (x[:128], y[:128])
      >>> value = lj(params, batch)   # [(N / |B|) sum_B log p(y | x) + log p(params)] / T
      >>> bool(jnp.isclose(value, (lj.log_likelihood(params, batch) + lj.log_prior(params)) / 0.1))
      True
    """
    if tempering not in TEMPERINGS:
        raise ValueError(f"tempering must be one of {TEMPERINGS}, got {tempering!r}")
    num_data = check_int("num_data", num_data)
    if jnp.ndim(temperature) != 0:
        raise ValueError(f"temperature must be a scalar, got an array of shape {jnp.shape(temperature)}: build one "
                         f"log-joint per temperature, or jax.vmap over a scalar one")
    check_positive("temperature", temperature)
    model = apply if isinstance(apply, Model) else None
    return LogJoint(model.apply if model else apply, prior, likelihood, num_data, temperature, tempering, model)
