"""Local reparametrization for dense layers (Kingma, Salimans & Welling 2015).

Under a mean-field q the pre-activations of a dense layer, b = x W + c, are
Gaussian given the layer's input x, independently per example and unit:

    b_nj ~ N( sum_i x_ni mu_ij + mu_j ,  sum_i x_ni^2 sigma_ij^2 + sigma_j^2 )

so instead of one weight draw shared by the whole minibatch, b is drawn
directly, with independent noise per example. Each example's likelihood term
has exactly the same distribution as with weight-space draws (given x, and x
depends only on earlier layers, independent of W under mean-field), so the
ELBO estimate keeps its expectation; the covariance between the examples'
terms vanishes, which lowers the variance of the minibatch estimate
(Kingma et al. 2015, sec. 2.3-3).

Only ``flax.linen.Dense`` layers are reparametrized: a flax method
interceptor replaces their forward pass while the model runs, finding each
layer's mean and standard deviation in the parameter tree at the layer's
module path (``bj.models.mlp`` and ``bj.models.from_flax`` models keep the
plain ``{"Dense_0": {"kernel", "bias"}, ...}`` layout). Other layers (e.g.
convolutions) use the ordinary weight-space draw.
"""
from __future__ import annotations

import itertools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from bayesjax.types import Array, Params, PRNGKey


def _subtree(tree: Params, path: tuple[str, ...], what: str) -> Params:
    node = tree
    for name in path:
        if not hasattr(node, "get") or name not in node:
            raise ValueError(
                f"local reparametrization: the dense layer at module path {'/'.join(path)!r} has no {what} "
                "in the parameter tree; it needs flax's plain nested-dict layout (bj.models.from_flax)"
            )
        node = node[name]
    return node


def dense_interceptor(key: PRNGKey, mean: Params, stddev: Params) -> tuple[Callable, list]:
    """A flax interceptor that samples every ``nn.Dense`` output from its local Gaussian.

    Args:
      key: noise key; layer k uses ``fold_in(key, k)`` in call order.
      mean: mean-field means, a tree like the parameters.
      stddev: mean-field standard deviations, a tree like the parameters.

    Returns:
      ``(interceptor, layers)``: the function to pass to
      ``flax.linen.intercept_methods`` and a list that records the module path
      of every layer it reparametrized (empty: the model has no ``nn.Dense``).
    """
    counter = itertools.count()
    layers: list = []

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if not isinstance(module, nn.Dense) or context.method_name != "__call__" or module.is_initializing():
            return next_fun(*args, **kwargs)
        path = tuple(module.path)
        m = _subtree(mean, path, "mean")
        s = _subtree(stddev, path, "standard deviation")
        x = args[0] if args else kwargs["inputs"]
        out_mean = jnp.matmul(x, m["kernel"], precision=module.precision)
        out_var = jnp.matmul(jnp.square(x), jnp.square(s["kernel"]), precision=module.precision)
        if module.use_bias:
            out_mean = out_mean + m["bias"]
            out_var = out_var + jnp.square(s["bias"])
        # max(., tiny): a unit whose input row is all zero (and has no bias) has variance 0; its
        # gradient through sqrt would be inf * 0 = nan.
        out_std = jnp.sqrt(jnp.maximum(out_var, jnp.finfo(out_var.dtype).tiny))
        eps = jax.random.normal(jax.random.fold_in(key, next(counter)), out_mean.shape, out_mean.dtype)
        layers.append(path)
        return out_mean + out_std * eps

    return interceptor, layers


def local_log_likelihood(key: PRNGKey, log_joint, params: Params, mean: Params, stddev: Params, batch) -> Array:
    """The minibatch log-likelihood with every dense layer locally reparametrized.

    Args:
      key: noise key of the pre-activations.
      log_joint: the :class:`~bayesjax.logjoint.LogJoint` (its ``log_likelihood`` is run).
      params: a weight-space draw, used by the layers that are not ``nn.Dense``.
      mean: mean-field means.
      stddev: mean-field standard deviations.
      batch: ``(x, y)``.

    Raises:
      ValueError: if the model has no ``flax.linen.Dense`` layer (at trace time).
    """
    interceptor, layers = dense_interceptor(key, mean, stddev)
    with nn.intercept_methods(interceptor):
        value = log_joint.log_likelihood(params, batch)
    if not layers:
        raise ValueError(
            "local_reparametrization=True needs a model with flax.linen.Dense layers (bj.models.mlp, "
            "bj.models.from_flax); this model's apply ran none"
        )
    return value
