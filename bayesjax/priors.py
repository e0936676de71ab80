"""Priors over network weights: one concept, the prior families and their one factorized form.

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

:func:`function_space` is the exception to all of the above: a Gaussian
process on the network's outputs at context points, a log density over
weights up to a constant, with no sampler over weights.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats
import optax

from bayesjax.checks import check_positive, concrete
from bayesjax.types import Array, Params, PRNGKey

__all__ = [
    "Prior",
    "gaussian",
    "layerwise",
    "laplace",
    "student_t",
    "function_space",
    "rbf_kernel",
    "sample_params",
]


class Prior(NamedTuple):
    """A prior over parameter pytrees.

    Attributes:
      log_prob: ``params -> scalar``, the exact normalized log density summed
        over all leaves (up to a constant for :func:`function_space`).
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
LAYERWISE_FAMILIES = ("gaussian", "laplace", "student_t")
"""The densities :func:`layerwise` scales per layer."""


def _laplace_log_density(x: Array, s: Array) -> Array:
    return jstats.laplace.logpdf(x, 0.0, s)


def layerwise(
    init: str = "he", weight_scale: float = 1.0, bias_scale: float = 1.0, family: str = "gaussian",
    df: float = 3.0,
) -> Prior:
    """A factorized prior whose per-layer scales follow an initialization scheme.

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

    With ``family="laplace"`` or ``"student_t"`` the same a_l (and
    ``bias_scale``) is the scale parameter of a Laplace or Student-t density
    (:func:`laplace`, :func:`student_t`) instead of the Gaussian's standard
    deviation: the heavy-tailed priors of Fortuin et al. (2021), "Bayesian
    Neural Network Priors Revisited", scaled per layer like the Gaussian.

    Args:
      init: ``"he"``, ``"lecun"`` or ``"xavier"`` (alias ``"glorot"``).
      weight_scale: multiplies every kernel's scale.
      bias_scale: the scale of every bias.
      family: ``"gaussian"``, ``"laplace"`` or ``"student_t"``.
      df: the Student-t's degrees of freedom nu.

    Returns:
      The :class:`Prior` (with ``stddev`` when Gaussian).

    Raises:
      ValueError: for an unknown ``init`` or ``family``, or a non-positive concrete scale.

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
    if family not in LAYERWISE_FAMILIES:
        raise ValueError(f"Unknown family {family!r}; choose one of {LAYERWISE_FAMILIES}.")
    check_positive("weight_scale", weight_scale)
    check_positive("bias_scale", bias_scale)
    check_positive("df", df)
    gain = _LAYERWISE_GAINS[init]

    def scale_of(leaf: Any) -> Any:
        shape = leaf.shape
        if len(shape) <= 1:
            return bias_scale
        receptive_field = math.prod(shape[:-2])
        fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
        variance = 2.0 / (fan_in + fan_out) if gain is None else gain / fan_in
        return weight_scale * math.sqrt(variance)

    if family == "laplace":
        return _location_scale(scale_of, _laplace_log_density, jax.random.laplace, gaussian=False)
    if family == "student_t":
        return _location_scale(scale_of, lambda x, s: jstats.t.logpdf(x, df, 0.0, s),
                               lambda key, shape, dtype: jax.random.t(key, df, shape, dtype), gaussian=False)
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
        _laplace_log_density,
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


def rbf_kernel(lengthscale: float | Array = 1.0, variance: float | Array = 1.0) -> Callable[[Array, Array], Array]:
    """The squared-exponential kernel ``k(a, b) = variance * exp(-|a - b|^2 / (2 lengthscale^2))``.

    Returns ``(a [M, ...], b [N, ...]) -> [M, N]``; inputs are flattened per example.
    """
    check_positive("lengthscale", lengthscale)
    check_positive("variance", variance)

    def kernel(a: Array, b: Array) -> Array:
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
        sq_dist = jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2 * a @ b.T
        return variance * jnp.exp(-0.5 * jnp.maximum(sq_dist, 0.0) / lengthscale**2)

    return kernel


def function_space(
    apply: Callable[[Params, Array], Array],
    context: Array,
    kernel: Callable[[Array, Array], Array] | None = None,
    weight_prior: Prior | None = None,
    jitter: float = 1e-6,
) -> Prior:
    """A Gaussian-process prior on the network's outputs at context points.

    .. math:: \\log p(\\theta) = \\sum_{k=1}^{K} \\log \\mathcal N\\big(f_k(X_c; \\theta)
              \\mid 0,\\ K_{cc} + \\epsilon I\\big) + \\log p_w(\\theta) + \\text{const},

    where ``f_k(X_c; theta)`` is output ``k`` of the network at the ``M``
    context points ``X_c``, ``K_cc = kernel(X_c, X_c)`` and ``p_w`` an
    optional weight-space prior. This is the function-space prior of FS-MAP
    (Rudner et al. 2023, "Should we learn most likely functions or
    parameters?"; the Gaussian-process prior at context points of Sun et al.
    2019, functional BNNs): the network is pulled towards functions the GP
    finds likely at ``X_c``, whatever the weights that produce them. Each
    output column gets its own GP with the same kernel.

    The function values fix at most ``M K`` directions of the weights; with
    more weights than that, the density is improper without ``p_w``. Its
    normalizer over weights has no closed form, so ``log_prob`` is exact up
    to a constant (enough for every sampler, MAP and VI's gradients) and
    there is no sampler over weights: ``sample`` raises, and evidence-based
    methods (Laplace's prior precision, which needs ``stddev``) refuse it.

    Args:
      apply: the model, ``(params, x) -> outputs [M, K]`` (or ``[M]``).
      context: the context inputs ``X_c``, ``[M, *input_shape]``: training
        inputs, or draws covering the input domain.
      kernel: ``(a, b) -> [len(a), len(b)]`` (default :func:`rbf_kernel`).
      weight_prior: ``p_w``, e.g. ``gaussian(1.0)`` (default: none).
      jitter: ``epsilon``, added to the kernel's diagonal (>= 0).

    Returns:
      The :class:`Prior` (``stddev`` is ``None``).

    Raises:
      ValueError: for empty or non-finite context inputs, a negative jitter,
        or a kernel matrix that is not positive definite at the context.

    Example:
      >>> prior = bj.priors.function_space(model.apply, x_train[:64], bj.priors.rbf_kernel(2.0),
      ...                                  weight_prior=bj.priors.gaussian(1.0))
      >>> lj = bj.log_joint(model.apply, prior, bj.likelihoods.gaussian(0.1), num_data=len(x_train))
    """
    check_positive("jitter", jitter, allow_zero=True)
    context = jnp.asarray(context)
    if context.ndim < 1 or context.shape[0] == 0:
        raise ValueError(f"function_space needs at least one context point, got context of shape {context.shape}")
    values = concrete(context)
    if values is not None and not jnp.all(jnp.isfinite(values)):
        raise ValueError("function_space: the context inputs contain NaN or infinite values")
    kernel = rbf_kernel() if kernel is None else kernel
    num_context = context.shape[0]
    gram = kernel(context, context) + jitter * jnp.eye(num_context, dtype=context.dtype)
    cholesky = jnp.linalg.cholesky(gram)
    factor = concrete(cholesky)
    if factor is not None and not jnp.all(jnp.isfinite(factor)):
        raise ValueError(f"function_space: the kernel matrix at the {num_context} context points is not positive "
                         f"definite (raise jitter={jitter}, or drop duplicate context points)")
    half_log_det = jnp.sum(jnp.log(jnp.diagonal(cholesky)))

    def log_prob(params: Params) -> Array:
        outputs = apply(params, context).reshape(num_context, -1)
        whitened = jax.scipy.linalg.solve_triangular(cholesky.astype(outputs.dtype), outputs, lower=True)
        num_outputs = outputs.shape[1]
        gp = (-0.5 * jnp.sum(whitened**2) - num_outputs * half_log_det
              - 0.5 * num_context * num_outputs * math.log(2 * math.pi))
        return gp if weight_prior is None else gp + weight_prior.log_prob(params)

    def sample(key: PRNGKey, params_like: Params) -> Params:
        raise NotImplementedError(
            "a function-space prior has no sampler over weights (its density is known up to a constant); "
            "start chains from the initialization, or draw prior functions from the GP itself"
        )

    return Prior(log_prob=log_prob, sample=sample)


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


