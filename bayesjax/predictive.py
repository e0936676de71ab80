"""The one Bayesian-model-averaging reducer.

    p(y | x, D) ~= 1/J sum_j p(y | x, theta_j),   theta_j ~ q(theta) or p(theta | D)

Every posterior in bayesjax ends here: its samples (leaves with a leading
sample axis) are pushed through the model and the likelihood's predictive and
averaged, streaming over chunks of inputs and of samples sized from a
memory budget (:mod:`bayesjax.memory`), so that nothing of size samples x
inputs x activations is built. Classification keeps log-probabilities
accumulated by log-sum-exp, so memory does not grow with samples x points x
classes; regression keeps the per-sample means and variances (samples x
points) for the exact mixture density. The epistemic / aleatoric split follows Depeweg et al. (2018):
total entropy = expected entropy (aleatoric) + mutual information (epistemic),
total variance = E[sigma^2] (aleatoric) + Var[mu] (epistemic); a linearized
(GLM) predictive adds its function-space variance to the epistemic part
(:class:`RegressionPredictive`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import memory
from bayesjax.checks import count_non_finite
from bayesjax.chunking import chunk_leading, map_chunks, unchunk_leading
from bayesjax.likelihoods import CLASSIFICATION, Likelihood
from bayesjax.types import ApplyFn, Array, Params


class ClassificationPredictive(NamedTuple):
    """Bayesian model average of a classifier.

    Attributes:
      log_probs: log of the averaged class probabilities, ``[N, C]``.
      expected_entropy: mean over samples of each sample's predictive entropy
        (aleatoric uncertainty), ``[N]``.
    """

    log_probs: Array
    expected_entropy: Array

    @property
    def probs(self) -> Array:
        """Averaged class probabilities ``[N, C]``."""
        return jnp.exp(self.log_probs)

    @property
    def entropy(self) -> Array:
        """Entropy of the averaged prediction (total uncertainty), ``[N]``."""
        return entropy(self.log_probs)

    @property
    def mutual_information(self) -> Array:
        """Entropy minus expected entropy (epistemic uncertainty), ``[N]``."""
        return self.entropy - self.expected_entropy

    def log_prob(self, y: Array) -> Array:
        """log p(y_i | x_i, D) for integer labels ``[N]``."""
        return jnp.take_along_axis(self.log_probs, y[:, None], axis=-1)[:, 0]


class RegressionPredictive(NamedTuple):
    """Bayesian model average of a regression model: a Gaussian mixture.

    Component s is ``N(mu_s, sigma_s^2 + v_s)``: ``mu_s`` and ``sigma_s^2``
    are the mean and noise variance of one weight sample (Monte Carlo, where
    ``v_s = 0``), and ``v_s`` is the variance of the function value itself
    when a component already integrates over weights in closed form (the
    linearized / GLM predictive of a Laplace posterior, Immer et al. 2021:
    ``v = J Sigma J^T``). Then

        aleatoric = E_s[sigma_s^2],   epistemic = Var_s[mu_s] + E_s[v_s],
        variance  = aleatoric + epistemic.

    Attributes:
      component_mean: per-component predictive means ``[S, N]``.
      component_variance: per-component noise variances ``[S, N]``.
      function_variance: per-component function-space variances ``[S, N]``,
        or ``None`` (zero: the Monte Carlo predictive).
    """

    component_mean: Array
    component_variance: Array
    function_variance: Array | None = None

    @property
    def mean(self) -> Array:
        """Mixture mean ``[N]``."""
        return jnp.mean(self.component_mean, axis=0)

    @property
    def aleatoric(self) -> Array:
        """E_s[sigma_s^2(x)], ``[N]``."""
        return jnp.mean(self.component_variance, axis=0)

    @property
    def epistemic(self) -> Array:
        """Var_s[mu_s(x)] + E_s[v_s(x)], ``[N]``."""
        spread = jnp.var(self.component_mean, axis=0)
        if self.function_variance is None:
            return spread
        return spread + jnp.mean(self.function_variance, axis=0)

    @property
    def variance(self) -> Array:
        """Total mixture variance = aleatoric + epistemic, ``[N]``."""
        return self.aleatoric + self.epistemic

    def log_prob(self, y: Array) -> Array:
        """Exact mixture log density log 1/S sum_s N(y_i | mu_s, sigma_s^2 + v_s), ``[N]``."""
        var = self.component_variance
        if self.function_variance is not None:
            var = var + self.function_variance
        log_components = -0.5 * (jnp.log(2 * math.pi * var) + (y - self.component_mean) ** 2 / var)
        return jax.nn.logsumexp(log_components, axis=0) - math.log(var.shape[0])


Predictive = ClassificationPredictive | RegressionPredictive


def entropy(log_probs: Array) -> Array:
    """Entropy of categorical distributions given by their log-probabilities.

        H = -sum_c p_c log p_c   over the last axis, with 0 log 0 = 0

    Args:
      log_probs: log class probabilities ``[..., C]`` (``-inf`` for impossible
        classes).

    Returns:
      Entropies ``[...]`` in nats.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax.predictive import entropy
      >>> round(float(entropy(jnp.log(jnp.array([0.5, 0.5, 0.0])))), 4)
      0.6931
    """
    return -jnp.sum(jnp.where(jnp.isneginf(log_probs), 0.0, jnp.exp(log_probs) * log_probs), axis=-1)


SAMPLE_AXIS_HINT = ("samples must have a leading sample axis: pass post.sample(key, n), or "
                    "jax.tree.map(lambda p: p[None], params) for one set")


def _num_samples(samples: Params) -> int:
    leaves = jax.tree.leaves(samples)
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        shown = sorted(sizes, key=str)
        raise ValueError(f"all sample leaves need the same leading (sample) axis, got sizes {shown}; "
                         f"{SAMPLE_AXIS_HINT}")
    return sizes.pop()


def check_inputs(apply: ApplyFn, samples: Params, x, likelihood: Likelihood) -> None:
    """ValueError, before anything compiles, for inputs :func:`predictive` cannot average over.

    Non-finite concrete inputs; samples without a common leading sample axis,
    or whose one sample the model cannot be applied to (one parameter set
    passed for stacked samples); a regression likelihood that reads another
    number of model outputs than the model has (a Gaussian on a classifier).
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
        if isinstance(leaf, jax.core.Tracer):
            continue
        with jax.ensure_compile_time_eval():  # a concrete array closed over inside someone's jit
            bad = count_non_finite(leaf if isinstance(leaf, jax.Array) else np.asarray(leaf))
        if bad:
            raise ValueError(f"predictive: inputs x{jax.tree_util.keystr(path)} contain {bad} non-finite value(s) "
                             f"(NaN or inf)")
    _num_samples(samples)
    one = jax.tree.map(lambda s: jax.ShapeDtypeStruct(jnp.shape(s)[1:], s.dtype), samples)
    x_like = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1,) + jnp.shape(a)[1:], a.dtype), x)
    try:
        outputs = jax.eval_shape(apply, one, x_like)
    except (TypeError, ValueError) as error:
        raise ValueError(f"predictive: the model cannot be applied to one sample (the samples without their leading "
                         f"axis): {type(error).__name__}: {error}. If you passed one parameter set, "
                         f"{SAMPLE_AXIS_HINT}") from error
    num_outputs = jnp.shape(outputs)[-1] if jnp.ndim(outputs) else None
    if likelihood.task != CLASSIFICATION and likelihood.num_outputs not in (None, num_outputs):
        raise ValueError(f"predictive: the {likelihood.name} likelihood reads {likelihood.num_outputs} model "
                         f"output(s), the model has {num_outputs} (a classifier needs a categorical likelihood)")


def _leading_shards(samples: Params) -> int:
    """Over how many devices the samples' leading axis is split (1 inside jit or unsharded)."""
    leaf = jax.tree.leaves(samples)[0]
    if isinstance(leaf, jax.core.Tracer) or not hasattr(leaf, "sharding"):
        return 1
    return leaf.shape[0] // leaf.sharding.shard_shape(leaf.shape)[0]


def predictive(
    apply: ApplyFn,
    samples: Params,
    x: Array,
    likelihood: Likelihood,
    chunk_size: int | None = None,
    *,
    input_chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> ClassificationPredictive | RegressionPredictive:
    """Monte Carlo Bayesian model average over posterior samples, streamed over inputs and samples.

    The inputs are cut into contiguous chunks (a ``lax.map``) and, within
    each, the samples into chunks (a ``lax.scan`` accumulating the average),
    so at most ``chunk_size x input_chunk_size`` forward passes are alive at
    once: nothing of size samples x inputs x activations is built. Sizes not
    given are chosen so that one chunk's intermediates fit ``memory_budget``
    bytes, estimated from the model's jaxpr (:mod:`bayesjax.memory`). The
    result does not depend on the chunking (up to float rounding).

    Args:
      apply: pure model ``apply(params, x) -> outputs``.
      samples: parameter samples; every leaf has a leading axis S (one
        parameter set is ``jax.tree.map(lambda p: p[None], params)``).
      x: inputs ``[N, ...]``, finite.
      likelihood: the observation model.
      chunk_size: samples evaluated at once (default: from the budget).
        Samples sharded over devices (e.g. ``Posterior.state`` of a run with
        ``mesh=``) are reduced where they live, never gathered: a chunk takes
        an equal share from every device (``chunk_size`` is rounded up to a
        multiple of the device count; inside ``jit`` pass such a multiple
        yourself).
      input_chunk_size: inputs evaluated at once (default: from the budget).
      memory_budget: bytes of intermediates one chunk may take (default
        :data:`bayesjax.memory.DEFAULT_BUDGET`).

    Returns:
      A :class:`ClassificationPredictive` or :class:`RegressionPredictive`.

    Raises:
      ValueError: before anything compiles (:func:`check_inputs`): non-finite
        inputs, samples without a leading sample axis, or a regression
        likelihood that does not read the model's outputs.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import bayesjax as bj
      >>> samples = {"w": jax.random.normal(jax.random.key(0), (100, 3, 4))}  # a 3 -> 4 linear classifier
      >>> pred = bj.predictive(lambda p, x: x @ p["w"], samples, jnp.ones((5, 3)), bj.likelihoods.categorical())
      >>> pred.probs.shape, pred.mutual_information.shape
      ((5, 4), (5,))
    """
    check_inputs(apply, samples, x, likelihood)
    num_samples = _num_samples(samples)
    if num_samples == 0:
        raise ValueError("predictive needs at least one sample")
    input_chunk, chunk_size = chunk_plan(apply, samples, x, likelihood, chunk_size, input_chunk_size, memory_budget)
    chunks, mask = chunk_leading(samples, num_samples, chunk_size)
    forward = jax.vmap(lambda params, xc: likelihood.predict(apply(params, xc)), (0, None))

    if likelihood.task == CLASSIFICATION:

        def on_inputs(xc):
            def accumulate(carry, chunk_and_mask):
                log_sum, entropy_sum = carry
                chunk, keep = chunk_and_mask
                log_probs = forward(chunk, xc)  # [k, b, C]
                entropies = entropy(log_probs)  # [k, b]
                log_probs = jnp.where(keep[:, None, None], log_probs, -jnp.inf)
                log_sum = jnp.logaddexp(log_sum, jax.nn.logsumexp(log_probs, axis=0))
                entropy_sum = entropy_sum + jnp.sum(jnp.where(keep[:, None], entropies, 0.0), axis=0)
                return (log_sum, entropy_sum), None

            shape = jax.eval_shape(forward, jax.tree.map(lambda c: c[0], chunks), xc)
            _, b, c = shape.shape
            init = (jnp.full((b, c), -jnp.inf, shape.dtype), jnp.zeros((b,), shape.dtype))
            return jax.lax.scan(accumulate, init, (chunks, mask))[0]

        log_sum, entropy_sum = map_chunks(on_inputs, x, input_chunk)
        return ClassificationPredictive(log_sum - math.log(num_samples), entropy_sum / num_samples)

    def on_inputs(xc):  # [b, S] each: the input axis leads, for map_chunks
        moments = unchunk_leading(jax.lax.map(lambda chunk: forward(chunk, xc), chunks), num_samples)
        return jax.tree.map(jnp.transpose, moments)

    means, variances = map_chunks(on_inputs, x, input_chunk)
    return RegressionPredictive(means.T, variances.T)


def chunk_plan(
    apply: ApplyFn,
    samples: Params,
    x: Array,
    likelihood: Likelihood,
    chunk_size: int | None = None,
    input_chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> tuple[int, int]:
    """``(inputs per chunk, samples per chunk)`` that :func:`predictive` takes.

    Explicit sizes are kept (the sample chunk rounded up to a multiple of the
    devices the samples are sharded over); the others fit ``memory_budget``
    by :func:`bayesjax.memory.chunk_sizes`, with the cost of one sample's
    forward pass per input from :func:`bayesjax.memory.example_cost`.
    """
    num_samples = _num_samples(samples)
    num_inputs = jnp.shape(x)[0]
    shards = _leading_shards(samples)
    if chunk_size is not None:
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        chunk_size = min(-(-int(chunk_size) // shards) * shards, num_samples)
    per_example, fixed = 1.0, 0.0
    if chunk_size is None or input_chunk_size is None:
        one = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), samples)
        per_example, fixed = memory.example_cost(lambda p, xc: likelihood.predict(apply(p, xc)), one, x)
    chunk_size, input_chunk = memory.chunk_sizes(num_samples, num_inputs, per_example, fixed, budget=memory_budget,
                                                 sample_chunk=chunk_size, input_chunk=input_chunk_size,
                                                 sample_multiple=shards)
    return input_chunk, chunk_size
