"""Priors over network weights.

A :class:`Prior` is a normalized log density over a whole parameter pytree
and a sampler that returns a pytree of the same structure, shapes and dtypes.
Every prior here is factorized: each leaf ``w`` is ``s * z`` with ``z`` drawn
iid from a standard family (normal, Laplace, Student-t) and a per-leaf scale
``s``, so

.. math:: \\log p(\\theta) = \\sum_{\\text{leaves } w} \\sum_i
          \\left[\\log f(w_i / s_w) - \\log s_w\\right].

Noise is drawn leaf by leaf with one key per leaf (never by raveling the
pytree), which keeps each leaf's sharding. Scales may be traced values, so a
sweep over prior scales is one ``vmap``::

    log_probs = jax.vmap(lambda s: bj.priors.gaussian(s).log_prob(params))(scales)

Gaussian priors also expose ``stddev(params)``: a tree of per-leaf standard
deviations, read by Laplace (prior precision) and VI (analytic KL).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats
import optax

from bayesjax._checks import check_positive
from bayesjax.types import Array, Params, PRNGKey

__all__ = [
    "Prior",
    "gaussian",
    "layerwise",
    "laplace",
    "student_t",
    "sample_params",
]


class Prior(NamedTuple):
    """A prior over parameter pytrees.

    Attributes:
      log_prob: ``params -> scalar``, the exact normalized log density summed
        over all leaves.
      sample: ``(key, params_like) -> params``, a draw with the structure,
        shapes and dtypes of ``params_like`` (arrays or
        ``jax.ShapeDtypeStruct`` leaves).
      stddev: for Gaussian priors, ``params -> tree`` of per-leaf standard
        deviations with each leaf's shape and dtype; ``None`` otherwise.

    Priors act on one parameter set; for stacked samples ``vmap`` over them.
    """

    log_prob: Callable[[Params], Array]
    sample: Callable[[PRNGKey, Params], Params]
    stddev: Callable[[Params], Params] | None = None


# Standard families: log-density of ``x`` at scale ``s`` and a standard draw.
_LeafLogDensity = Callable[[Array, Array], Array]
_StandardSampler = Callable[[PRNGKey, tuple, Any], Array]


def _normal_log_density(x: Array, s: Array) -> Array:
    return jstats.norm.logpdf(x, 0.0, s)


def _normal_sampler(key: PRNGKey, shape: tuple, dtype: Any) -> Array:
    return jax.random.normal(key, shape, dtype)


def gaussian(scale: float | Array = 1.0) -> Prior:
    """Isotropic Gaussian prior ``w_i ~ N(0, scale^2)`` on every weight.

    .. math:: \\log p(\\theta) = \\sum_i -\\frac{\\theta_i^2}{2\\sigma^2}
              - \\log\\sigma - \\tfrac12\\log 2\\pi, \\qquad \\sigma = \\text{scale}.

    Args:
      scale: the standard deviation ``sigma > 0``; a Python number, an array
        broadcastable against every leaf, or a traced value (e.g. under
        ``jax.vmap`` over a grid of scales).

    Returns:
      The :class:`Prior`, with ``stddev``.

    Raises:
      ValueError: if a concrete ``scale`` is not positive.

    Example:
      >>> prior = gaussian(scale=1.0)
      >>> params = {"w": jnp.zeros(3)}
      >>> round(float(prior.log_prob(params)), 4)  # 3 * -0.5 * log(2 pi)
      -2.7568
    """
    check_positive("scale", scale)
    return _location_scale(
        lambda leaf: scale, _normal_log_density, _normal_sampler, gaussian=True
    )


_LAYERWISE_GAINS = {"xavier": None, "glorot": None, "lecun": 1.0, "he": 2.0}


def layerwise(
    init: str = "he", weight_scale: float = 1.0, bias_scale: float = 1.0
) -> Prior:
    """Gaussian prior whose weight variances follow an initialization scheme.

    Each kernel ``W_l`` (a leaf with ``ndim >= 2``) gets
    ``W_l ~ N(0, a_l^2 I)`` and each bias (``ndim <= 1``)
    ``b_l ~ N(0, bias_scale^2 I)``, with

    .. math:: a_l^2 = \\text{weight\\_scale}^2 \\times
        \\begin{cases} 2 / (n_\\text{in} + n_\\text{out}) & \\text{xavier
        (Glorot \\& Bengio, 2010)}\\\\ 1 / n_\\text{in} & \\text{lecun (LeCun
        et al., 1998)}\\\\ 2 / n_\\text{in} & \\text{he (He et al., 2015)}
        \\end{cases}

    Fans come from the kernel's shape as in
    ``jax.nn.initializers.variance_scaling``: dense ``[n_in, n_out]``; conv
    ``[kh, kw, c_in, c_out]`` gives ``n_in = kh kw c_in`` and
    ``n_out = kh kw c_out``.

    Args:
      init: ``"he"``, ``"lecun"`` or ``"xavier"`` (alias ``"glorot"``).
      weight_scale: multiplies every kernel's standard deviation.
      bias_scale: standard deviation of every bias.

    Returns:
      The :class:`Prior`, with ``stddev``.

    Raises:
      ValueError: for an unknown ``init`` or a non-positive concrete scale.

    Example:
      >>> prior = layerwise("he")
      >>> std = prior.stddev({"Dense_0": {"kernel": jnp.zeros((8, 4)),
      ...                                 "bias": jnp.zeros(4)}})
      >>> float(std["Dense_0"]["kernel"][0, 0])  # sqrt(2 / 8)
      0.5
    """
    if init not in _LAYERWISE_GAINS:
        raise ValueError(
            f"Unknown init {init!r}; choose one of {sorted(_LAYERWISE_GAINS)}."
        )
    check_positive("weight_scale", weight_scale)
    check_positive("bias_scale", bias_scale)
    gain = _LAYERWISE_GAINS[init]

    def scale_of(leaf: Any) -> Any:
        shape = leaf.shape
        if len(shape) <= 1:
            return bias_scale
        receptive_field = math.prod(shape[:-2])
        fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
        variance = 2.0 / (fan_in + fan_out) if gain is None else gain / fan_in
        return weight_scale * math.sqrt(variance)

    return _location_scale(scale_of, _normal_log_density, _normal_sampler, gaussian=True)


def laplace(scale: float | Array = 1.0) -> Prior:
    """Iid Laplace prior ``w_i ~ Laplace(0, scale)``, a sparsity-inducing tail.

    .. math:: \\log p(\\theta) = \\sum_i -\\frac{|\\theta_i|}{b} - \\log 2b,
              \\qquad b = \\text{scale}.

    Heavier-tailed than a Gaussian; see Fortuin et al. (2021), "Bayesian
    Neural Network Priors Revisited".

    Args:
      scale: the Laplace scale ``b > 0`` (std is ``sqrt(2) b``).

    Returns:
      The :class:`Prior` (``stddev`` is ``None``).

    Example:
      >>> round(float(laplace(1.0).log_prob({"w": jnp.zeros(2)})), 4)  # 2 * -log 2
      -1.3863
    """
    check_positive("scale", scale)
    return _location_scale(
        lambda leaf: scale,
        lambda x, s: jstats.laplace.logpdf(x, 0.0, s),
        jax.random.laplace,
        gaussian=False,
    )


def student_t(df: float | Array, scale: float | Array = 1.0) -> Prior:
    """Iid Student-t prior ``w_i ~ t_df(0, scale)``, heavy-tailed.

    .. math:: \\log p(\\theta) = \\sum_i \\log\\Gamma(\\tfrac{\\nu+1}{2})
        - \\log\\Gamma(\\tfrac{\\nu}{2}) - \\tfrac12\\log(\\nu\\pi) - \\log s
        - \\tfrac{\\nu+1}{2}\\log\\left(1 + \\frac{\\theta_i^2}{\\nu s^2}\\right),
        \\qquad \\nu = \\text{df},\\ s = \\text{scale}.

    Fortuin et al. (2021), "Bayesian Neural Network Priors Revisited", found
    heavy-tailed priors reduce the cold-posterior effect in fully connected
    networks.

    Args:
      df: degrees of freedom ``nu > 0``.
      scale: the scale ``s > 0``.

    Returns:
      The :class:`Prior` (``stddev`` is ``None``).

    Example:
      >>> prior = student_t(df=3.0)
      >>> prior.sample(jax.random.key(0), {"w": jnp.zeros(2)})["w"].shape
      (2,)
    """
    check_positive("df", df)
    check_positive("scale", scale)
    return _location_scale(
        lambda leaf: scale,
        lambda x, s: jstats.t.logpdf(x, df, 0.0, s),
        lambda key, shape, dtype: jax.random.t(key, df, shape, dtype),
        gaussian=False,
    )


def sample_params(
    prior: Prior, key: PRNGKey, params_like: Params, num_samples: int
) -> Params:
    """``num_samples`` independent prior draws stacked on a new leading axis.

    Args:
      prior: the prior.
      key: a PRNG key, split into one key per draw.
      params_like: a parameter pytree (arrays or ``jax.ShapeDtypeStruct``).
      num_samples: the number of draws ``S``.

    Returns:
      Parameters whose leaves have shape ``(S, *leaf.shape)``: prior
      predictive draws for ``bj.predictive``.

    Example:
      >>> draws = sample_params(gaussian(), jax.random.key(0),
      ...                       {"w": jnp.zeros((2, 3))}, 5)
      >>> draws["w"].shape
      (5, 2, 3)
    """
    keys = jax.random.split(key, num_samples)
    return jax.vmap(lambda k: prior.sample(k, params_like))(keys)


def _location_scale(
    scale_of: Callable[[Any], Any],
    log_density: _LeafLogDensity,
    standard_sample: _StandardSampler,
    gaussian: bool,
) -> Prior:
    """A factorized prior: each leaf ``w = scale_of(w) * z``, ``z`` iid standard.

    Args:
      scale_of: leaf (array or shape/dtype struct) -> its scale (a Python
        number or an array broadcastable against the leaf; may be traced).
      log_density: ``(x, s) -> elementwise log density`` at scale ``s``.
      standard_sample: ``(key, shape, dtype) -> standard draw``.
      gaussian: whether ``z`` is standard normal (then ``stddev`` is set).
    """

    def leaf_scale(leaf: Any) -> Array:
        return jnp.asarray(scale_of(leaf), dtype=leaf.dtype)

    def log_prob(params: Params) -> Array:
        terms = [
            jnp.sum(log_density(leaf, leaf_scale(leaf)))
            for leaf in map(jnp.asarray, jax.tree.leaves(params))
        ]
        return sum(terms, start=jnp.zeros((), jnp.result_type(*terms, float)))

    def sample(key: PRNGKey, params_like: Params) -> Params:
        return jax.tree.map(
            lambda leaf, k: leaf_scale(leaf) * standard_sample(k, leaf.shape, leaf.dtype),
            params_like,
            optax.tree_utils.tree_split_key_like(key, params_like),
        )

    def stddev(params: Params) -> Params:
        return jax.tree.map(
            lambda leaf: jnp.broadcast_to(leaf_scale(leaf), leaf.shape), params
        )

    return Prior(log_prob=log_prob, sample=sample, stddev=stddev if gaussian else None)


