"""Where convergence is measured: on chosen weights, or on the predictions at probe inputs.

For Bayesian neural networks weight-space R-hat is nearly uninformative: the
posterior is invariant to permutations of hidden units and to sign flips, so
chains that sample the *same* predictive distribution sit in different,
equivalent modes and report huge weight-space R-hat. Izmailov, Vikram, Hoffman
& Wilson (2021, "What are Bayesian neural network posteriors really like?",
ICML) therefore assess convergence in function space, on the predictions at a
set of probe inputs; :func:`function_space` does that. :func:`weight_space`
is exact for models without such symmetries (linear and GLM posteriors).
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from bayesjax.diagnostics import kernels
from bayesjax.diagnostics.draws import chain_samples
from bayesjax.driver.posterior import Posterior
from bayesjax.likelihoods import CLASSIFICATION, Likelihood
from bayesjax.types import ApplyFn, Array, ArrayTree, Params

__all__ = ["check_function_args", "function_space", "function_stats", "leaf_subset", "predictions", "select_draws",
           "weight_space", "weight_stats"]

_DEFAULT_ENTRIES_PER_LEAF = 20


def _stats(draws: ArrayTree) -> dict[str, ArrayTree]:
    """Every statistic of :func:`~bayesjax.diagnostics.kernels.report`, in one compiled call."""
    return kernels.per_element(kernels.report, draws, "diagnostics")


def leaf_subset(params: Params, num: int = _DEFAULT_ENTRIES_PER_LEAF) -> Params:
    """The first ``num`` entries of every leaf, flattened (scalars kept): a fixed-size, deterministic subset."""
    return jax.tree.map(lambda leaf: jnp.ravel(leaf)[:num] if jnp.ndim(leaf) else leaf, params)


def _default_select(params: Params) -> Array:
    """The first (up to) 20 entries of each leaf, flattened, concatenated in leaf order."""
    leaves = [jnp.ravel(leaf) for leaf in jax.tree.leaves(leaf_subset(params))]
    dtype = jnp.result_type(*leaves)
    return jnp.concatenate([leaf.astype(dtype) for leaf in leaves])


@functools.partial(jax.jit, static_argnums=0)
def select_draws(select: Callable[[Params], ArrayTree], samples: Params) -> ArrayTree:
    """``select`` applied to every draw of ``samples`` (leaves ``[C, K, ...]``), in one compiled call."""
    return jax.vmap(jax.vmap(select))(samples)


def weight_stats(samples: Params, select: Callable[[Params], Array] | None) -> dict[str, Array]:
    """:func:`weight_space` of draws ``[C, K, ...]`` already read from a run."""
    return _stats(select_draws(select or _default_select, samples))


def weight_space(posterior: Posterior, select: Callable[[Params], Array] | None = None) -> dict[str, Array]:
    """R-hat (split and rank-normalized), bulk and tail ESS and the MCSE of the mean of chosen weights.

    Weight-space R-hat of a neural network is dominated by its symmetries
    (permuted hidden units, sign flips): chains in equivalent modes look
    unconverged. Prefer :func:`function_space` for BNNs; weight space is exact
    for models without such symmetries (linear and GLM posteriors).

    Args:
      posterior: a Markov chain :class:`~bayesjax.driver.posterior.Posterior`
        (see :func:`~bayesjax.diagnostics.draws.chain_samples`; diverged
        chains are excluded with a warning).
      select: maps one sample's params to an array of the weights to check.
        Default: the first (up to) 20 entries of each leaf, flattened and
        concatenated, a fixed-size subset so the cost does not grow with the
        network.

    Returns:
      ``{"rhat", "rank_rhat", "ess", "tail_ess", "mcse"}``: arrays shaped like
      ``select``'s output (see :func:`~bayesjax.diagnostics.convergence.split_rhat`,
      :func:`~bayesjax.diagnostics.convergence.rank_rhat`,
      :func:`~bayesjax.diagnostics.convergence.ess`,
      :func:`~bayesjax.diagnostics.convergence.tail_ess`,
      :func:`~bayesjax.diagnostics.mcse.mcse_mean`).

    Example:
      >>> d = bj.diagnostics.weight_space(linear_post, select=lambda p: p["w"][:2, 0])
      >>> d["rhat"].shape, d["ess"].shape
      ((2,), (2,))
    """
    return weight_stats(chain_samples(posterior), select)



def check_function_args(apply: ApplyFn | None, x_probe: Array | None, likelihood: Likelihood | None) -> bool:
    """Whether function-space numbers are asked for; ValueError if only some of the three are given."""
    given = [a is not None for a in (apply, x_probe, likelihood)]
    if any(given) and not all(given):
        raise ValueError("function-space diagnostics need all of apply, x_probe and likelihood")
    return all(given)


@functools.partial(jax.jit, static_argnames=("apply", "likelihood", "chunk_size"))
def predictions(samples: Params, x_probe: Array, apply: ApplyFn, likelihood: Likelihood,
                chunk_size: int | None = None) -> Array:
    """Per-sample predictions ``[C, K, N, ...]`` at ``x_probe`` (see :func:`function_space`).

    One vmapped forward pass per chunk of ``chunk_size`` samples (default: all).
    """

    def predict(params):
        out = likelihood.predict(apply(params, x_probe))
        return out if likelihood.task == CLASSIFICATION else out[0]  # regression: the mean

    num_chains, num_draws = jax.tree.leaves(samples)[0].shape[:2]
    flat = jax.tree.map(lambda leaf: leaf.reshape((num_chains * num_draws,) + leaf.shape[2:]), samples)
    if chunk_size is None:
        preds = jax.vmap(predict)(flat)
    else:
        preds = jax.lax.map(predict, flat, batch_size=chunk_size)
    return preds.reshape((num_chains, num_draws) + preds.shape[1:])


def function_stats(samples: Params, apply: ApplyFn, x_probe: Array, likelihood: Likelihood,
                   chunk_size: int | None = None) -> dict[str, Array]:
    """:func:`function_space` of draws ``[C, K, ...]`` already read from a run."""
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _stats(predictions(samples, jnp.asarray(x_probe), apply, likelihood, chunk_size))


def function_space(posterior: Posterior, apply: ApplyFn, x_probe: Array, likelihood: Likelihood,
                   chunk_size: int | None = None) -> dict[str, Array]:
    """R-hat, ESS and MCSE (as :func:`weight_space`) of the predictions at probe inputs.

    Every retained sample :math:`\\theta_{ck}` is pushed through the model at the
    probe batch: classification gives log class probabilities
    :math:`\\log p(y = j \\mid x_n, \\theta_{ck})` (``likelihood.predict``),
    ``[C, K, N, C_out]``; regression gives the predictive mean
    :math:`\\mu(x_n; \\theta_{ck})`, ``[C, K, N]``. R-hat and ESS are then
    computed for every probe point (and class). This is the convergence check
    of Izmailov et al. (2021): predictions are invariant to the network's weight
    symmetries, so chains that mix over the same predictive distribution agree
    here even when their weights do not.

    Args:
      posterior: a Markov chain :class:`~bayesjax.driver.posterior.Posterior`.
      apply: the model ``apply(params, x) -> outputs``.
      x_probe: probe inputs ``[N, ...]`` (a few dozen test points suffice).
      likelihood: the observation model used for the run.
      chunk_size: samples evaluated at once (default: all C K in one vmap);
        bounds the forward pass memory.

    Returns:
      ``{"rhat", "rank_rhat", "ess", "tail_ess", "mcse"}``, each ``[N, C_out]``
      (classification) or ``[N]`` (regression).

    Example:
      >>> d = bj.diagnostics.function_space(linear_post, linear_lj.apply, linear_x[:5], linear_lj.likelihood)
      >>> d["rhat"].shape, d["ess"].shape
      ((5,), (5,))
    """
    return function_stats(chain_samples(posterior), apply, x_probe, likelihood, chunk_size)
