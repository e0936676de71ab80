"""Filter response normalization with a thresholded linear unit: a normalization layer with no batch statistics.

Singh & Krishnan (2020), "Filter Response Normalization Layer: Eliminating
Batch Dependence in the Training of Deep Neural Networks" (CVPR). Each
example's channel is divided by the root mean square of its own responses,
so the output of an example never depends on the rest of its batch and the
layer has parameters only: a posterior over its weights is an ordinary one,
which is why Izmailov et al. (2021), "What are Bayesian neural network
posteriors really like?", use it in place of BatchNorm for HMC.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from bayesjax.checks import check_positive
from bayesjax.types import Array


class FilterResponseNorm(nn.Module):
    """Filter response normalization (FRN) followed by a thresholded linear unit (TLU).

    For inputs ``x [B, *spatial, C]`` (images ``[B, H, W, C]``), per example
    b and channel c:

    .. math::
        \\nu^2_{bc} = \\operatorname{mean}_{h, w} x_{bhwc}^2, \\qquad
        y_{bhwc} = \\gamma_c \\frac{x_{bhwc}}{\\sqrt{\\nu^2_{bc} + \\epsilon}} + \\beta_c, \\qquad
        z_{bhwc} = \\max(y_{bhwc}, \\tau_c)

    (Singh & Krishnan 2020, eqs. 1-3). ``gamma``, ``beta`` and ``tau`` are
    learnable, each of shape ``[C]``, initialized to 1, 0 and 0 as in the
    paper and in Izmailov et al. (2021)'s ResNet-20-FRN, so at
    initialization ``z = max(x / sqrt(nu^2 + eps), 0)``. ``epsilon`` is a
    constant (the paper's fixed-epsilon layer, 1e-6 as in Izmailov et al.);
    the paper's learned epsilon, meant for 1x1 activation maps, is not
    implemented. Being 1-D, the three parameters are biases to
    :func:`bayesjax.priors.layerwise`.

    Attributes:
      epsilon: the constant added to ``nu^2``, > 0.

    Raises:
      ValueError: inputs with no spatial axis (fewer than 3 dimensions), where
        ``nu^2`` would be a single squared response; a non-positive ``epsilon``.

    Example:
      >>> layer = FilterResponseNorm()
      >>> x = jax.random.normal(key, (2, 5, 5, 3))
      >>> variables = layer.init(key, x)
      >>> {name: p.shape for name, p in variables["params"].items()}
      {'gamma': (3,), 'beta': (3,), 'tau': (3,)}
      >>> z = layer.apply(variables, 10 * x)   # invariant to the scale of x
      >>> bool(jnp.allclose(z, layer.apply(variables, x), atol=1e-4)), bool(jnp.all(z >= 0))
      (True, True)
    """

    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if x.ndim < 3:
            raise ValueError(
                f"FilterResponseNorm needs inputs [B, *spatial, C] with at least one spatial axis, "
                f"got shape {x.shape}."
            )
        check_positive("epsilon", self.epsilon)
        channels = (x.shape[-1],)
        gamma = self.param("gamma", nn.initializers.ones, channels)
        beta = self.param("beta", nn.initializers.zeros, channels)
        tau = self.param("tau", nn.initializers.zeros, channels)
        nu2 = jnp.mean(jnp.square(x), axis=tuple(range(1, x.ndim - 1)), keepdims=True)
        y = gamma * (x * jax.lax.rsqrt(nu2 + self.epsilon)) + beta
        return jnp.maximum(y, tau)
