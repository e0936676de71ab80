"""``bj.laplace``: the post-hoc Laplace approximation of a trained network.

One call compiles one program: the empty accumulator, the chunked pass over
the data, the prior precision and the factorization (KFAC eigendecompositions
or the Cholesky factor) are traced together, so a cold call pays one XLA
compile rather than one per stage and per shape.
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from bayesjax import compiling
from bayesjax.checks import check_data
from bayesjax.inference.laplace import algorithm, factorization, jacobians, layers, subsets
from bayesjax.inference.laplace.approximation import LaplacePosterior
from bayesjax.inference.laplace.curvature import check_options, num_factor_columns
from bayesjax.inference.laplace.posterior import LogJointKey, normalize_prior_precision
from bayesjax.likelihoods import check_targets
from bayesjax.logjoint import LogJoint
from bayesjax.model_state import in_evaluation_mode
from bayesjax.models.model import Variables
from bayesjax.trees import num_params
from bayesjax.types import Array, Batch, Params

MAX_FULL_PARAMS = 20_000
"""Largest D for ``hessian="full"`` (a D x D float32 matrix of 1.6 GB)."""


def _fit(params, data, prior_precision, likelihood_weight, prior_weight, num_data, *, log_joint_key: LogJointKey,
         hessian, curvature, subset, chunk_size, mode_check):
    """``(state, prior_precision, scalars, factor, mode_statistic)`` of the Laplace posterior at ``params``.

    ``prior_precision``: normalized (see
    :func:`~.posterior.normalize_prior_precision`), or ``None`` for
    ``1 / prior.stddev^2`` per weight, returned unreduced for the host to check.
    ``mode_statistic``: with ``mode_check`` (``data`` all N examples),
    :func:`mode_statistic` from the log-joint's gradient summed in the
    curvature's own pass; else ``None``.
    """
    log_joint = log_joint_key.log_joint
    state, _, likelihood_grad = algorithm.add_batch(
        algorithm.init(params, hessian, subset), data, log_joint=log_joint, hessian=hessian, curvature=curvature,
        subset=subset, chunk_size=chunk_size, with_gradient=mode_check)
    names = subsets.resolve(subset, params)
    if prior_precision is None:
        stddev = log_joint.prior.stddev(subsets.select(params, names))
        prior_precision = jax.tree.map(lambda s: 1.0 / jnp.square(s), stddev)
    scalars, factor = algorithm.finalize(state, prior_precision, likelihood_weight, prior_weight, num_data, hessian,
                                         log_joint_key, names)
    statistic = None
    if mode_check:
        prior_grad = subsets.select(jax.grad(log_joint.log_prior)(params), names)
        log_joint_grad = jax.tree.map(lambda g_lik, g_prior: likelihood_weight * g_lik + prior_weight * g_prior,
                                      likelihood_grad, prior_grad)
        delta = prior_precision
        if hessian == "kfac":  # one precision per leaf (the host checks that each leaf's entries are equal)
            delta = jax.tree.map(lambda d: jnp.reshape(d, -1)[0], delta)
        post = algorithm.assemble(state, delta, scalars, factor, log_joint_key, hessian, curvature, names, chunk_size)
        statistic = mode_statistic(log_joint_grad, factorization.marginal_variance(post))
    return state, prior_precision, scalars, factor, statistic


FIT = compiling.jit(_fit, static_argnames=("log_joint_key", "hessian", "curvature", "subset", "chunk_size",
                                          "mode_check"))


def fit_work(log_joint: LogJoint, params: Params, x_shape: tuple[int, ...], num_outputs: int, hessian: str,
             curvature: str, dim: int) -> float:
    """Multiply-adds of a fit: M + 2 passes per example, plus ``V^T V`` (full).

    For :meth:`bayesjax.compiling.Twins.pick`.
    """
    columns = num_factor_columns(log_joint.likelihood, num_outputs, curvature)
    per_example = compiling.forward_macs(params, x_shape) * (columns + 2)
    if hessian == "full":
        per_example += columns * dim**2
    return x_shape[0] * per_example


def laplace(
    log_joint: LogJoint,
    params_map: Params,
    data: Batch,
    hessian: str = "kfac",
    curvature: str = "ggn",
    subset="all",
    *,
    prior_precision=None,
    chunk_size: int | None = None,
) -> LaplacePosterior:
    """Laplace approximation at a MAP estimate (MacKay 1992; Daxberger et al. 2021).

    ``q(theta) = N(theta_MAP, P^{-1})`` on the Bayesian weights with

        tempering="posterior":   P = (K + Delta) / T
        tempering="likelihood":  P = K / T + Delta

    where ``K`` is the GGN (or empirical Fisher) of the log-likelihood summed
    over ``data`` (scaled by ``N / len(data)`` if ``data`` is not all
    ``num_data`` examples) and ``Delta`` the Gaussian prior's precision. The
    curvature is computed matrix-free, in chunks of ``chunk_size`` examples
    (default: from one chunk's traced intermediates and the memory budget,
    :func:`bayesjax.memory.input_chunk`), so memory does not grow with the
    data. When ``data`` holds all ``num_data`` examples, the same pass sums
    the log-joint's gradient at ``params_map``, and a mean far from a mode
    warns (:func:`warn_far_from_mode`).

    Temperature enters P as above: a colder T narrows q by sqrt(T) (posterior
    tempering). ``params_map`` should be the mode of that same tempered
    log-joint (train it with :func:`bayesjax.map`). There is no step size: the
    fit is one pass over ``data``. The choices that matter are ``hessian``
    (``"kfac"``, the default, keeps the correlations within each layer in
    two Kronecker factors per layer; ``"diag"`` is cheapest; ``"full"`` is
    exact for small models), ``subset`` (``"last_layer"`` is cheap and often
    competitive, Daxberger et al. 2021) and the prior precision, which a
    fixed N(0, 1) prior usually gets wrong: tune it after the fit with
    :meth:`~bayesjax.inference.laplace.approximation.LaplacePosterior.optimize_prior_precision`
    (by the marginal likelihood, per layer, or on validation data).

    Predict with the linearized (GLM) predictive,
    ``post.predictive_glm(x, link="probit")`` (Immer et al. 2021), or by
    sampling weights, ``bj.predictive(apply, post.sample(key, S), x, lik)``;
    ``post.log_marginal_likelihood()`` is the Laplace evidence.

    Args:
      log_joint: the tempered target from ``bj.log_joint`` (its ``apply``,
        ``likelihood``, Gaussian ``prior``, ``num_data``, ``temperature`` and
        ``tempering`` are read).
      params_map: the MAP (mode of the tempered log-joint). For a model with
        state, the :class:`~bayesjax.models.Variables` of the MAP: the
        curvature is taken in evaluation mode with that state fixed (BatchNorm
        an affine map), over the weights (BatchNorm's scale and bias are
        weights: leave them out with ``subset``), and the posterior's
        ``log_joint.apply`` evaluates its weight samples with that state.
      data: ``(x, y)``, usually the training set.
      hessian: ``"kfac"`` (Kronecker-factored per dense and conv layer), ``"diag"`` or
        ``"full"`` (dense ``D x D``; ``D <= 20,000``).
      curvature: ``"ggn"`` (generalized Gauss-Newton) or ``"ef"`` (empirical Fisher).
      subset: ``"all"``, ``"last_layer"`` (the last linen ``Dense_<k>``, or
        else the dense or conv layer whose output the model returns, as for
        nnx models: :func:`~bayesjax.inference.laplace.layers.last_layer`;
        the rest fixed at the MAP) or a sequence of top-level module names.
      prior_precision: overrides the prior's precision (scalar or a tree like
        the Bayesian weights); needed for non-Gaussian priors.
      chunk_size: examples per chunk.

    Returns:
      A :class:`~bayesjax.inference.laplace.approximation.LaplacePosterior` with
      ``sample``, ``predictive_glm``, ``log_marginal_likelihood`` and
      ``optimize_prior_precision``.

    Raises:
      ValueError: unknown options, KFAC on layers other than flax linen ``Dense`` / ``Conv`` or nnx
        ``Linear`` / ``Conv``,
        a full Hessian over more than 20,000 weights, a non-Gaussian prior
        without ``prior_precision``, or data that do not fit the likelihood.

    Example:
      >>> post = bj.laplace(lj, params_map, (ds.x_train, ds.y_train), hessian="kfac")
      >>> post = post.optimize_prior_precision()
      >>> pred = post.predictive_glm(ds.x_test, link="probit")
      >>> pred_mc = bj.predictive(model.apply, post.sample(key, 100), ds.x_test, lj.likelihood)

    References:
      D. J. C. MacKay, "A practical Bayesian framework for backpropagation
      networks", 1992. H. Ritter, A. Botev and D. Barber, "A scalable Laplace
      approximation for neural networks", ICLR 2018. A. Immer, M. Korzepa and
      M. Bauer, "Improving predictions of Bayesian neural nets via local
      linearization", AISTATS 2021. E. Daxberger et al., "Laplace Redux:
      effortless Bayesian deep learning", NeurIPS 2021.
    """
    if not isinstance(log_joint, LogJoint):
        raise TypeError(f"laplace needs a LogJoint from bj.log_joint, got {type(log_joint).__name__}")
    check_options(hessian, curvature)
    if isinstance(params_map, Variables):
        log_joint, params_map = in_evaluation_mode(log_joint, params_map.state), params_map.params
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    x, y = jax.device_put(check_data(data))  # once, for the fit and the mode check (on the CPU, without a copy)
    num_outputs = jacobians.num_outputs(log_joint.apply, params_map, x)
    check_targets(log_joint.likelihood, y, num_outputs)
    subset = subset if isinstance(subset, str) else tuple(subset)
    if subset == "last_layer" and subsets.last_dense(params_map) is None:  # nnx, or other names: find it by tracing
        subset = layers.last_layer(log_joint.apply, params_map, x[:1])
    names = subsets.resolve(subset, params_map)
    dim = num_params(subsets.select(params_map, names))
    if hessian == "full" and dim > MAX_FULL_PARAMS:
        raise ValueError(
            f"hessian='full' over {dim} weights needs a {dim} x {dim} matrix; the limit is {MAX_FULL_PARAMS}. "
            "Use hessian='kfac' or 'diag', or subset='last_layer'."
        )
    if prior_precision is None and log_joint.prior.stddev is None:
        raise ValueError(
            "the Laplace approximation needs a Gaussian prior (bj.priors.gaussian or bj.priors.layerwise, "
            "which expose stddev) or an explicit prior_precision="
        )
    sub = subsets.select(params_map, names)
    if prior_precision is not None:
        prior_precision = normalize_prior_precision(prior_precision, sub, log_joint, hessian)
    log_joint_key = LogJointKey(log_joint)
    work = fit_work(log_joint, params_map, x.shape, num_outputs, hessian, curvature, dim)
    state, delta, scalars, factor, statistic = FIT.pick(work, params_map, prior_precision)(
        params_map, (x, y), prior_precision, log_joint.likelihood_weight, log_joint.prior_weight, log_joint.num_data,
        log_joint_key=log_joint_key, hessian=hessian, curvature=curvature, subset=subset, chunk_size=chunk_size,
        mode_check=len(x) == log_joint.num_data,
    )
    if prior_precision is None:  # concrete: checked and reduced to a scalar per leaf on the host
        prior_precision = normalize_prior_precision(delta, sub, log_joint, hessian)
    posterior = algorithm.assemble(state, prior_precision, scalars, factor, log_joint_key, hessian, curvature, names,
                                   chunk_size)
    if statistic is not None:
        warn_far_from_mode(float(statistic))
    return posterior


MODE_TOLERANCE = 1.0
""":func:`warn_far_from_mode` warns above this mean squared gradient in posterior standard deviations."""


def mode_statistic(log_joint_grad: Params, variance: Params) -> Array:
    """``r = 1/D sum_i (g_i sigma_i)^2``: how far from a mode the Laplace posterior's mean sits (traceable).

    ``g`` (``log_joint_grad``) is the gradient of the tempered log-joint over
    the Bayesian weights at the mean and ``sigma^2`` (``variance``) the
    posterior's marginal variances. ``r`` is 0 at a mode, does not change
    when a weight is rescaled, and for a diagonal Gaussian log-joint is the
    mean squared distance of its mode from the mean in posterior standard
    deviations.
    """
    terms = jax.tree.map(lambda g, v: jnp.sum(jnp.square(g) * v), log_joint_grad, variance)
    return sum(jax.tree.leaves(terms)) / num_params(variance)


def warn_far_from_mode(statistic: float) -> None:
    """Warns when :func:`mode_statistic` exceeds :data:`MODE_TOLERANCE`: train the MAP further.

    Above it the Gaussian is centred off the posterior's bulk.
    :func:`laplace` checks it when its data hold all ``num_data`` examples,
    with the gradient summed in the curvature's own pass.
    """
    if not statistic <= MODE_TOLERANCE:
        warnings.warn(f"bj.laplace: params_map is not at a mode of the tempered log-joint: its gradient is "
                      f"{statistic ** 0.5:.3g} posterior standard deviations per weight (root mean square; 0 at a "
                      f"mode, tolerance {MODE_TOLERANCE ** 0.5:.3g}); train it further (bj.map) before the Laplace "
                      f"fit", stacklevel=3)
