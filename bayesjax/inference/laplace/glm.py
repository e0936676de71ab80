"""The linearized (GLM) predictive of a Laplace posterior.

Linearizing the network at the MAP, ``f(x; theta) ~= f(x; m) + J(x)(theta - m)``,
turns the weight posterior ``N(m, P^{-1})`` into a Gaussian over outputs
(MacKay 1992; Immer et al. 2021, "Improving predictions of Bayesian neural
nets via local linearization"):

    f(x) ~ N(f(x; m), Sigma_f(x)),    Sigma_f(x) = J(x) P^{-1} J(x)^T   [K, K].

``Sigma_f`` is computed per chunk of inputs from tapped layers (:mod:`.layers`):
with layer inputs ``a_t`` and output gradients ``g^k_t = df_k/dz_t`` at the
layer's T output locations, and a diagonal or KFAC-eigenbasis covariance
``Sigma_W`` (``[in, out]`` variances in the basis ``Q_A (x) Q_G``), the kernel
Jacobian of output k in that basis is ``J~^k = sum_t a~_t g~^k_t^T`` and

    Sigma_f[k, l] = sum_ij J~^k_ij J~^l_ij Sigma_W[i, j],    a~ = Q_A^T a,  g~ = Q_G^T g.

For a dense layer (T = 1) this is ``sum_j (g~^k_j g~^l_j) sum_i a~_i^2
Sigma_W[i, j]``, so the last layer's ``phi(x)^T (x) I_K`` Jacobian
(laplace-torch issue 138) is never materialized; a convolution (T > 1) builds
``J~`` per example of one chunk. Untapped models use per-example Jacobians of
one chunk.

Classification link approximations for ``E[softmax(f)]``:

* ``"probit"``: ``softmax(f / sqrt(1 + pi/8 diag Sigma_f))`` (MacKay 1992;
  the multiclass form of Lu et al. 2020 used by laplace-torch).
* ``"bridge"``: the Laplace bridge to a Dirichlet (Hobbhahn et al. 2022),
  ``alpha_k = (1 - 2/K + e^{f_k} sum_l e^{-f_l} / K^2) / Sigma_f[k, k]``,
  predictive ``alpha / sum alpha``.
* ``"mc"``: Monte Carlo over ``f`` (exact as ``num_samples`` grows).

The expected entropy (aleatoric part) is always a Monte Carlo estimate over
``f``. Regression with a Gaussian likelihood is exact: ``N(f(x; m),
Sigma_f + sigma^2)``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from bayesjax import compiling, memory
from bayesjax.chunking import map_chunks
from bayesjax.inference.laplace import jacobians
from bayesjax.inference.laplace.factorization import coefficients, kron_eigenvalues, kron_layers
from bayesjax.inference.laplace.layers import get_path
from bayesjax.inference.laplace.posterior import PosteriorData
from bayesjax.likelihoods import CLASSIFICATION
from bayesjax.predictive import ClassificationPredictive, RegressionPredictive, entropy
from bayesjax.types import Array, PRNGKey

LINKS = ("probit", "bridge", "mc")


def _chunk_size(post: PosteriorData, per_chunk, x: Array) -> int:
    """``post.chunk_size``, else the inputs per chunk of ``per_chunk(xc)`` that fit the memory budget.

    From the traced peak of one chunk (:func:`bayesjax.memory.input_chunk`).
    """
    return post.chunk_size if post.chunk_size is not None else memory.input_chunk(per_chunk, x)


def _chunk_covariance(post: PosteriorData, layers, x: Array) -> tuple[Array, Array]:
    apply, params = post.log_joint.apply, post.mean
    num_outputs = jacobians.num_outputs(apply, params, x)
    batch = x.shape[0]
    identity = jnp.broadcast_to(jnp.eye(num_outputs), (batch, num_outputs, num_outputs))
    if layers is not None:
        outputs, inputs, grads = jacobians.tapped_gradients(apply, params, x, layers,
                                                            lambda f: identity.astype(f.dtype))
        cov = jnp.zeros((batch, num_outputs, num_outputs), outputs.dtype)
        for layer, a, g, var_kernel, var_bias in _layer_variances(post, layers, inputs, grads):
            if layer.num_locations == 1:
                weight = jnp.square(a[:, 0]) @ var_kernel
                if layer.has_bias:
                    weight = weight + var_bias
                cov = cov + jnp.einsum("kbj,lbj,bj->bkl", g[:, :, 0], g[:, :, 0], weight)
                continue
            jac = jacobians.kernel_jacobians(a, g)  # [K, B, in, out]
            cov = cov + jnp.einsum("kbij,lbij,ij->bkl", jac, jac, var_kernel)
            if layer.has_bias:
                g_sum = jnp.sum(g, axis=2)
                cov = cov + jnp.einsum("kbj,lbj,j->bkl", g_sum, g_sum, var_bias)
        return outputs, cov
    outputs = apply(params, x)
    jac = jacobians.per_example_vjp(apply, params, post.subset, x, identity.astype(outputs.dtype))
    rows = jnp.concatenate([j.reshape(batch, num_outputs, -1) for j in jax.tree.leaves(jac)], axis=2)
    if post.hessian == "diag":
        a, b = coefficients(post)
        variance = jax.tree.map(lambda k, d: jnp.broadcast_to(1.0 / (a * k + b * d), k.shape),
                                post.curvature.diag, post.prior_precision)
        flat = jnp.concatenate([v.reshape(-1) for v in jax.tree.leaves(variance)])
        return outputs, jnp.einsum("bkd,d,bld->bkl", rows, flat, rows)
    whitened = jax.scipy.linalg.solve_triangular(post.factor, rows.reshape(batch * num_outputs, -1).T, lower=True)
    whitened = whitened.reshape(-1, batch, num_outputs)
    return outputs, jnp.einsum("dbk,dbl->bkl", whitened, whitened)


def _layer_variances(post: PosteriorData, layers, inputs, grads):
    """Per tapped layer ``(layer, a, g, var_kernel [in, out], var_bias [out] | None)``.

    Diag: the posterior variances in the standard basis. KFAC: ``a`` and ``g``
    rotated into the eigenbases (``a Q_A``, ``g Q_G``) and the inverse
    precision eigenvalues.
    """
    out = []
    if post.hessian == "diag":
        a_coef, b_coef = coefficients(post)
        variance = jax.tree.map(lambda k, d: 1.0 / (a_coef * k + b_coef * d), post.curvature.diag,
                                post.prior_precision)
        for layer in layers:
            var = get_path(variance, layer.path)
            var_bias = var["bias"] if layer.has_bias else None
            out.append((layer, inputs[layer.key], grads[layer.key], var["kernel"].reshape(layer.fan_in, layer.fan_out),
                        var_bias))
        return out
    by_key = {layer.key: layer for layer in layers}
    for layer, factor, eigen, delta_kernel, delta_bias in kron_layers(post):
        eig_kernel, eig_bias = kron_eigenvalues(post, factor, eigen, delta_kernel, delta_bias)
        out.append((by_key[layer.key], inputs[layer.key] @ eigen.eigvecs_a, grads[layer.key] @ eigen.eigvecs_g,
                    1.0 / eig_kernel, None if eig_bias is None else 1.0 / eig_bias))
    return out


def functional_covariance(post: PosteriorData, x: Array) -> tuple[Array, Array]:
    """``(f(x; mean) [N, K], J P^{-1} J^T [N, K, K])``, chunked over ``x``."""
    layers = jacobians.tap_layers(post.hessian, post.log_joint.apply, post.mean, post.subset, x)

    def per_chunk(xc):
        return _chunk_covariance(post, layers, xc)

    return map_chunks(per_chunk, x, _chunk_size(post, per_chunk, x))


def _sqrt_psd(cov: Array) -> Array:
    eigvals, eigvecs = jnp.linalg.eigh(0.5 * (cov + jnp.swapaxes(cov, -1, -2)))
    return eigvecs * jnp.sqrt(jnp.maximum(eigvals, 0.0))[..., None, :]


def classify(f_mean: Array, f_cov: Array, noise: Array) -> tuple[dict[str, Array], Array]:
    """Class log-probabilities under every link, and the expected entropy, from function-space moments.

    All links come from one pass: the Monte Carlo draws that give the
    expected entropy are also the ``"mc"`` link.

    Args:
      f_mean: ``[B, K]``.
      f_cov: ``[B, K, K]``.
      noise: standard normal draws ``[S, K]`` for the Monte Carlo parts, shared
        by all inputs (common random numbers: each input's estimate is
        unbiased, and results do not depend on chunking).

    Returns:
      ``({link: log_probs [B, K]}, expected_entropy [B])``.
    """
    samples = f_mean[:, None, :] + jnp.einsum("bkl,sl->bsk", _sqrt_psd(f_cov), noise)  # [B, S, K]
    sample_log_probs = jax.nn.log_softmax(samples, axis=-1)
    expected_entropy = jnp.mean(entropy(sample_log_probs), axis=1)
    variances = jnp.diagonal(f_cov, axis1=-2, axis2=-1)
    num_classes = f_mean.shape[-1]
    alpha = (1.0 - 2.0 / num_classes + jnp.exp(f_mean) / num_classes**2
             * jnp.sum(jnp.exp(-f_mean), axis=-1, keepdims=True)) / variances
    log_probs = {
        "mc": jax.nn.logsumexp(sample_log_probs, axis=1) - math.log(samples.shape[1]),
        "probit": jax.nn.log_softmax(f_mean * jax.lax.rsqrt(1.0 + math.pi / 8.0 * variances), axis=-1),
        "bridge": jnp.log(alpha) - jnp.log(jnp.sum(alpha, axis=-1, keepdims=True)),
    }
    return log_probs, expected_entropy


def function_noise(post: PosteriorData, x: Array, key: PRNGKey | None, num_samples: int) -> Array:
    """The ``[S, K]`` standard normals of the Monte Carlo parts, shared by all inputs.

    ``key=None`` means ``jax.random.key(0)``. Called eagerly, the draw is its
    own small program (:func:`bayesjax.compiling.normal`), shared by every posterior
    with the same K; traced, it joins the caller's.
    """
    dtype = jnp.result_type(*jax.tree.leaves(post.subset_mean))
    shape = (num_samples, jacobians.num_outputs(post.log_joint.apply, post.mean, x))
    return compiling.normal(key, shape, dtype, post, x)


def _glm_moments(post: PosteriorData, x: Array, noise: Array):
    """Classification: ``({link: log_probs}, expected_entropy)``; regression: ``(mean, noise variance, Sigma_f)``.

    Args:
      noise: :func:`function_noise` (unused for regression).
    """
    layers = jacobians.tap_layers(post.hessian, post.log_joint.apply, post.mean, post.subset, x)
    likelihood = post.log_joint.likelihood

    def per_chunk(xc):
        f_mean, f_cov = _chunk_covariance(post, layers, xc)
        if likelihood.task != CLASSIFICATION:
            mean, noise_variance = likelihood.predict(f_mean)
            return mean, noise_variance, f_cov[:, 0, 0]
        return classify(f_mean, f_cov, noise)

    return map_chunks(per_chunk, x, _chunk_size(post, per_chunk, x))


GLM_MOMENTS = compiling.jit(_glm_moments)
glm_moments = GLM_MOMENTS.optimized


def glm_work(post: PosteriorData, x_shape: tuple[int, ...], num_outputs: int) -> float:
    """Multiply-adds of :func:`glm_moments`: K + 1 passes (+ ``J P^-1``, full).

    For :meth:`bayesjax.compiling.Twins.pick`.
    """
    per_example = compiling.forward_macs(post.mean, x_shape) * (num_outputs + 1)
    if post.hessian == "full":
        per_example += num_outputs * post.num_params**2
    return x_shape[0] * per_example


def to_predictive(post: PosteriorData, moments, link: str):
    """The :mod:`bayesjax.predictive` type for one link from :func:`glm_moments`."""
    if post.log_joint.likelihood.task == CLASSIFICATION:
        log_probs, expected_entropy = moments
        return ClassificationPredictive(log_probs[link], expected_entropy)
    mean, noise_variance, function_variance = moments
    return RegressionPredictive(mean[None], noise_variance[None], function_variance[None])


def predictive_glm(
    post: PosteriorData,
    x: Array,
    link: str = "probit",
    *,
    key: PRNGKey | None = None,
    num_samples: int = 100,
) -> ClassificationPredictive | RegressionPredictive:
    """The GLM predictive, as the same types ``bj.predictive`` returns.

    Args:
      post: a Laplace posterior.
      x: inputs ``[N, ...]``.
      link: ``"probit"``, ``"bridge"`` or ``"mc"`` (classification; ignored
        for regression, which is exact).
      key: PRNG key of the Monte Carlo parts (the ``"mc"`` link and the
        expected entropy); default ``jax.random.key(0)``. The same ``S``
        standard-normal draws serve every input.
      num_samples: function-space draws per input for those parts.

    Returns:
      A :class:`~bayesjax.predictive.ClassificationPredictive`, or for
      regression a :class:`~bayesjax.predictive.RegressionPredictive` with one
      component (``S = 1``), ``N(f(x; m), sigma^2 + Sigma_f)``: ``aleatoric``
      is the noise ``sigma^2``, ``epistemic`` the function-space variance
      ``Sigma_f = J P^{-1} J^T`` (its ``function_variance``), and ``mean``,
      ``variance`` and ``log_prob`` are exact.

    Example:
      >>> post = bj.laplace(lj, params_map, (x, y), hessian="kfac")
      >>> pred = post.predictive_glm(x_test, link="probit")
      >>> sorted(bj.metrics.evaluate(pred, y_test))
      ['accuracy', 'brier', 'ece', 'nll']
    """
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, got {link!r}")
    num_samples = int(num_samples)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    noise = function_noise(post, x, key, num_samples)
    moments = GLM_MOMENTS.pick(glm_work(post, jnp.shape(x), noise.shape[1]), post, x, noise)(post, x, noise)
    return to_predictive(post, moments, link)


__all__ = ["LINKS", "functional_covariance", "predictive_glm", "classify", "glm_moments", "function_noise"]
