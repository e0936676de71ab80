"""MC dropout: a network trained with dropout, its masks sampled at prediction time.

Gal & Ghahramani 2016 ("Dropout as a Bayesian approximation: representing
model uncertainty in deep learning") read a dropout network trained with
weight decay as variational inference with a Bernoulli family: a sample of
the posterior is the trained weights under a fresh dropout mask,

    theta_j = M * diag(z_j),   z_j ~ Bernoulli(1 - p),

and the predictive is the Monte Carlo average over masks. Training is MAP on
the tempered log-joint with the model in training mode (dropout on, a fresh
mask each step; :mod:`bayesjax.model_state`). A sample is
:class:`~bayesjax.models.Variables` whose ``dropout_key`` fixes its masks, so
``bj.predictive`` averages over masks like over any other samples.
"""
from __future__ import annotations

import jax
import optax

from bayesjax.base import Algorithm, cached_builder
from bayesjax.inference import map as map_estimate
from bayesjax.logjoint import LogJoint
from bayesjax.models.model import Variables
from bayesjax.targeting import targeting
from bayesjax.types import Batch, PRNGKey


def sample(key: PRNGKey, state: map_estimate.MAPState, num_samples: int) -> Variables:
    """The trained weights ``num_samples`` times, each with its own dropout key."""
    return Variables(map_estimate.sample(state, num_samples), None, jax.random.split(key, num_samples))


@cached_builder
def build(log_joint: LogJoint, optimizer: optax.GradientTransformation) -> Algorithm:
    """MC dropout (Gal & Ghahramani 2016) as an :class:`Algorithm`.

    Training: MAP (:func:`bayesjax.map`) on the tempered log-joint with the
    model in training mode, a fresh dropout mask z ~ Bernoulli(1 - p) drawn
    at every step; the objective is the per-example loss U / N averaged over
    masks, whose prior share is the weight decay of Gal & Ghahramani's
    objective. Temperature enters as in MAP: not at all under posterior
    tempering, as the prior's weight T under likelihood tempering.

    Posterior: the trained weights M under a random mask, theta_j = M diag(z_j);
    ``sample`` returns :class:`~bayesjax.models.Variables` each with its own
    ``dropout_key``, so ``bj.predictive`` averages over masks like over any
    other samples.

    Learning rate: the optimizer meets the gradient of the mean loss, as for
    :func:`bayesjax.map` (``optax.adam(1e-3)`` is the usual choice). The
    dropout rate p is the model's (``nn.Dropout(p)``), not a builder argument.

    State and info: :class:`~bayesjax.inference.map.MAPState` and
    :class:`~bayesjax.inference.map.MAPInfo`, wrapped with the model's state
    (:func:`bayesjax.with_model_state`).

    Args:
      log_joint: a log-joint built from a :class:`~bayesjax.models.Model`
        with dropout (``bj.log_joint(model, ...)``; its ``train_apply``
        applies dropout).
      optimizer: an optax optimizer on the per-example loss U / N, as in
        :func:`bayesjax.map` (the prior's share is the weight decay of Gal &
        Ghahramani's objective).

    Raises:
      ValueError: if the log-joint has no model with a training mode.

    Example:
      >>> class Net(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x, train: bool = False):
      ...         x = nn.Dropout(0.2, deterministic=not train)(nn.relu(nn.Dense(16)(x.reshape(len(x), -1))))
      ...         return nn.Dense(10)(x)
      >>> net = bj.models.from_flax(Net())
      >>> dropout_lj = bj.log_joint(net, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=n)
      >>> post = bj.run(key, bj.mc_dropout(dropout_lj, optax.adam(1e-3)), net.init(key, x[:1]), (x, y),
      ...               num_steps=20, batch_size=50, progress=False)
      >>> pred = bj.predictive(net.apply, post.sample(key, 8), x_test, dropout_lj.likelihood)
      >>> pred.probs.shape
      (100, 10)

    References:
      Y. Gal and Z. Ghahramani, "Dropout as a Bayesian approximation:
      representing model uncertainty in deep learning", ICML 2016.
    """
    if log_joint.model is None or log_joint.model.train_apply is None:
        raise ValueError("MC dropout needs a log-joint built from a Model with dropout in its training mode: "
                         "bj.log_joint(bj.models.from_flax(module), ...) with a module taking `train`")

    def init_fn(key: PRNGKey, params) -> map_estimate.MAPState:
        del key
        return map_estimate.init(params, optimizer)

    def step_fn(key: PRNGKey, state, batch: Batch, *, log_joint: LogJoint):
        del key
        return map_estimate.step(state, batch, log_joint=log_joint, optimizer=optimizer)

    return targeting(log_joint, init_fn, step_fn, sample)
