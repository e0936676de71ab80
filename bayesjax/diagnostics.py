"""Convergence diagnostics of Markov chains: split R-hat and bulk ESS, in weight and function space.

A :class:`~bayesjax.run.Posterior` from :func:`bayesjax.run` over a Markov
chain (SGLD, SGHMC, HMC, NUTS, ...) keeps each chain's retained positions in a
:class:`~bayesjax.base.BufferedState` with a leading chain axis. This module
reads them back in the order they were visited, as leaves ``[C, K, ...]``
(C chains, K draws each), and measures

* **split R-hat** (Gelman et al., *Bayesian Data Analysis*, 3rd ed., 2013,
  §11.4): the potential scale reduction of Gelman & Rubin (1992) computed after
  cutting every chain into its two halves. Splitting turns a drift *within* a
  chain into a disagreement *between* chains, which plain R-hat misses when all
  chains drift alike.
* **bulk ESS** (Vehtari, Gelman, Simpson, Carpenter & Bürkner, 2021, "Rank-
  normalization, folding, and localization: an improved R-hat for assessing
  convergence of MCMC", *Bayesian Analysis* 16(2)): the multi-chain effective
  sample size (Geyer's initial monotone sequence, as in Stan) of the split,
  rank-normalized draws.

Both estimators are blackjax's (:func:`blackjax.diagnostics.potential_scale_reduction`,
:func:`blackjax.diagnostics.effective_sample_size`); this module only prepares
their input (time order, splitting, rank normalization) and maps them over
parameter pytrees.

For Bayesian neural networks weight-space R-hat is nearly uninformative: the
posterior is invariant to permutations of hidden units and to sign flips, so
chains that sample the *same* predictive distribution sit in different,
equivalent modes and report huge weight-space R-hat. Izmailov, Vikram, Hoffman
& Wilson (2021, "What are Bayesian neural network posteriors really like?",
ICML) therefore assess convergence in function space, on the predictions at a
set of probe inputs; :func:`function_space` does that.

Example:
  >>> post = bj.run(key, bj.sgld(lj, 1e-4), init_fn, (x, y), num_steps=5000,
  ...               num_chains=4, burnin=1000, thin=10, progress=False)
  >>> bj.diagnostics.summary(post, model.apply, x[:64], lj.likelihood, burnin=1000)
  {'rhat_max': 1.01, 'ess_min': 310.2, 'function_rhat_max': 1.00, ...}
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.base import BufferedState, ordered_samples
from bayesjax.likelihoods import CLASSIFICATION, Likelihood
from bayesjax.run import DivergenceError, DivergenceWarning, Posterior
from bayesjax.types import ApplyFn, Array, ArrayTree, Params

__all__ = [
    "chain_samples",
    "ess",
    "function_space",
    "split_rhat",
    "summary",
    "to_arviz",
    "weight_space",
]

_MIN_DRAWS = 4  # two draws per half-chain: the least the ESS estimator accepts
_DEFAULT_ENTRIES_PER_LEAF = 20


# --------------------------------------------------------------------------- samples


def _healthy_chains(posterior: Posterior, what: str) -> np.ndarray:
    """Indices of the chains that did not diverge; warns about the others."""
    divergences = posterior.divergences
    num_chains = posterior.num_chains
    if divergences:
        described = ", ".join(f"chain {c} diverged at step {t}" for c, t in sorted(divergences.items()))
        if len(divergences) == num_chains:
            raise DivergenceError(f"every chain diverged ({described}); no samples to {what}")
        warnings.warn(f"{described}: excluded from the {what}", DivergenceWarning, stacklevel=4)
    return np.array([c for c in range(num_chains) if c not in divergences], dtype=np.int64)


def _check_buffered(posterior: Posterior) -> BufferedState:
    state = getattr(posterior, "state", None)
    if not isinstance(state, BufferedState):
        raise ValueError(
            "convergence diagnostics need a Markov chain run with a sample buffer (a Posterior from "
            "bj.run over an algorithm whose state has a `position`, e.g. SGLD or HMC), got a state of "
            f"type {type(state).__name__}; approximate posteriors (MAP, VI, Laplace, SWAG, ensembles) "
            "have no chains to diagnose"
        )
    return state


def _chain_samples(posterior: Posterior, what: str) -> tuple[Params, np.ndarray]:
    state = _check_buffered(posterior)
    healthy = _healthy_chains(posterior, what)
    samples, filled = jax.vmap(ordered_samples)(state._replace(inner=None))  # only the buffer is read
    filled = np.asarray(filled)[healthy]
    if np.all(filled == 0):
        raise ValueError(
            "the chains collected no samples (is burnin >= num_steps, or did the algorithm mark no step "
            "as a sample?)"
        )
    if np.any(filled != filled[0]):
        counts = ", ".join(f"chain {c}: {n}" for c, n in zip(healthy, filled))
        raise ValueError(f"chains collected different numbers of samples ({counts}); diagnostics need equal lengths")
    count = int(filled[0])
    samples = jax.tree.map(lambda leaf: leaf[healthy, :count], samples)
    return samples, healthy


def chain_samples(posterior: Posterior) -> Params:
    """Each chain's retained positions in the order they were visited.

    Diverged chains (see :attr:`bayesjax.run.Posterior.divergences`) are left
    out with a :class:`~bayesjax.run.DivergenceWarning`.

    Args:
      posterior: a :class:`~bayesjax.run.Posterior` of a Markov chain run, whose
        state is a :class:`~bayesjax.base.BufferedState` with a leading chain
        axis.

    Returns:
      Parameters whose leaves are ``[C, K, ...]``: C healthy chains, K draws
      each, oldest first (the last K retained if the ring buffer overflowed).

    Raises:
      ValueError: the posterior is not a buffered Markov chain, or the chains
        collected nothing, or different numbers of draws.
      DivergenceError: every chain diverged.

    Example:
      >>> draws = bj.diagnostics.chain_samples(post)   # {"w": [4, 500, 3]}
    """
    return _chain_samples(posterior, "diagnostics")[0]


# --------------------------------------------------------------------------- estimators


def _split_chains(x: Array) -> Array:
    """``[C, K, ...] -> [2C, K // 2, ...]``: first and second halves as separate chains.

    With an odd K the middle draw is dropped (as in ArviZ and Stan).
    """
    half = x.shape[1] // 2
    return jnp.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _rank_normalize(x: Array) -> Array:
    """Rank-normalized draws, z = Phi^-1((r - 3/8) / (S + 1/4)), ranks pooled over chains.

    ``x`` is ``[C, K, E]``; r is the average (tie-aware) 1-based rank of a draw
    among all S = C K draws of its element (Vehtari et al. 2021, eq. 14).
    """
    num_chains, num_draws, num_events = x.shape
    pooled = x.reshape(num_chains * num_draws, num_events).T  # [E, S]
    ranked = jnp.sort(pooled, axis=-1)
    below = jax.vmap(functools.partial(jnp.searchsorted, side="left"))(ranked, pooled)
    at_or_below = jax.vmap(functools.partial(jnp.searchsorted, side="right"))(ranked, pooled)
    rank = (below + at_or_below + 1) / 2  # mean of the ordinal ranks below+1 .. at_or_below
    size = pooled.shape[-1]
    z = jax.scipy.special.ndtri((rank - 0.375) / (size + 0.25)).astype(x.dtype)
    return z.T.reshape(num_chains, num_draws, num_events)


@jax.jit
def _pooled_split_rhat(x: Array) -> Array:
    """``[C, K, E] -> [E]``."""
    from blackjax.diagnostics import potential_scale_reduction  # lazily: see bayesjax.inference.hmc._blackjax

    return potential_scale_reduction(_split_chains(x), chain_axis=0, sample_axis=1).reshape(x.shape[2:])


@jax.jit
def _pooled_ess(x: Array) -> Array:
    """``[C, K, E] -> [E]``."""
    from blackjax.diagnostics import effective_sample_size  # lazily: see bayesjax.inference.hmc._blackjax

    z = _rank_normalize(_split_chains(x))
    return effective_sample_size(z, chain_axis=0, sample_axis=1).reshape(x.shape[2:])


def _per_element(statistic: Callable[[Array], Array], samples: ArrayTree, name: str) -> ArrayTree:
    """Applies ``statistic`` (``[C, K, E] -> [E]``) to every element of a pytree of ``[C, K, ...]`` leaves.

    The leaves are concatenated along one event axis first, so a whole tree is
    one compiled call (per total size), not one per leaf shape; the event axis
    also stops blackjax's final ``squeeze`` from dropping size-1 axes.
    """
    leaves, treedef = jax.tree.flatten(samples)
    if not leaves:
        raise ValueError(f"{name} got an empty pytree")
    leaves = [jnp.asarray(leaf) for leaf in leaves]
    for leaf in leaves:
        if leaf.ndim < 2:
            raise ValueError(f"{name} needs leaves [chains, draws, ...], got a leaf of shape {leaf.shape}")
    lead = {leaf.shape[:2] for leaf in leaves}
    if len(lead) != 1:
        raise ValueError(f"{name} needs every leaf to have the same [chains, draws], got {sorted(lead)}")
    num_chains, num_draws = lead.pop()
    if num_draws < _MIN_DRAWS:
        raise ValueError(f"{name} needs at least {_MIN_DRAWS} draws per chain, got {num_draws}")
    dtype = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
    flat = jnp.concatenate([leaf.reshape(num_chains, num_draws, -1).astype(dtype) for leaf in leaves], axis=2)
    values = statistic(flat) if flat.shape[2] else jnp.zeros((0,), dtype)
    sizes = np.cumsum([math.prod(leaf.shape[2:]) for leaf in leaves])[:-1]
    parts = jnp.split(values, sizes)
    return treedef.unflatten([part.reshape(leaf.shape[2:]) for part, leaf in zip(parts, leaves)])


def split_rhat(samples: ArrayTree) -> ArrayTree:
    r"""Split R-hat of every element, from draws ``[C, K, ...]``.

    Each chain is cut into its first and second half (the middle draw dropped
    when K is odd), giving M = 2C chains of N = K // 2 draws, and the potential
    scale reduction of Gelman & Rubin (1992) is computed over them
    (:func:`blackjax.diagnostics.potential_scale_reduction`):

    .. math::

        W = \frac{1}{M} \sum_m s_m^2, \qquad
        B = \frac{N}{M - 1} \sum_m (\bar\theta_m - \bar\theta)^2, \qquad
        \hat R = \sqrt{\frac{\frac{N - 1}{N} W + \frac{1}{N} B}{W}}.

    Splitting is what makes this *split* R-hat (Gelman et al., BDA3 §11.4;
    Vehtari et al. 2021, §3): a chain that drifts, even when every chain drifts
    alike, has halves with different means and so R-hat > 1. Values above
    1.01 (Vehtari et al.) or, more leniently, 1.1 (BDA3) signal
    non-convergence. This is the classic, not the rank-normalized, statistic.
    An element constant over all draws has 0/0 = NaN.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (C >= 1 chains,
        K >= 4 draws, time-ordered), e.g. from :func:`chain_samples`.

    Returns:
      A pytree of the same structure with leaves ``[...]``.

    Example:
      >>> bj.diagnostics.split_rhat({"w": draws})["w"].max()
    """
    return _per_element(_pooled_split_rhat, samples, "split_rhat")


def ess(samples: ArrayTree) -> ArrayTree:
    r"""Bulk effective sample size of every element, pooled over chains, from draws ``[C, K, ...]``.

    Following Vehtari et al. (2021, §4.2), the chains are split in halves
    (M = 2C chains of N = K // 2 draws), the pooled draws are rank-normalized,
    :math:`z = \Phi^{-1}((r - 3/8) / (MN + 1/4))` with r the (average) rank,
    and the multi-chain ESS of Stan/Geyer is computed on z by
    :func:`blackjax.diagnostics.effective_sample_size`:

    .. math::

        \hat N_\mathrm{eff} = \frac{MN}{\hat\tau}, \qquad
        \hat\tau = -1 + 2 \sum_{t'=0}^{T} \hat P_{t'}, \qquad
        \hat P_{t'} = \hat\rho_{2t'} + \hat\rho_{2t' + 1},

    with :math:`\hat\rho_t` the autocorrelation combined over chains and T
    the end of Geyer's initial positive, monotone sequence. For independent
    draws :math:`\hat N_\mathrm{eff} \approx CK`; for an AR(1) chain with
    coefficient :math:`\rho`, :math:`\hat N_\mathrm{eff} / CK \approx (1 - \rho) / (1 + \rho)`.
    Ranks make the estimate invariant to monotone transformations and finite
    for heavy tails. An element with no variation within chains gets 0.

    Args:
      samples: a pytree whose leaves are ``[C, K, ...]`` (K >= 4, time-ordered).

    Returns:
      A pytree of the same structure with leaves ``[...]``.

    Example:
      >>> bj.diagnostics.ess({"w": draws})["w"].min()
    """
    return _per_element(_pooled_ess, samples, "ess")


def _stats(draws: ArrayTree) -> dict[str, ArrayTree]:
    return {"rhat": split_rhat(draws), "ess": ess(draws)}


# --------------------------------------------------------------------------- weight space


def _leaf_subset(params: Params, num: int = _DEFAULT_ENTRIES_PER_LEAF) -> Params:
    """The first ``num`` entries of every leaf, flattened (scalars kept): a fixed-size, deterministic subset."""
    return jax.tree.map(lambda leaf: jnp.ravel(leaf)[:num] if jnp.ndim(leaf) else leaf, params)


def _default_select(params: Params) -> Array:
    """The first (up to) 20 entries of each leaf, flattened, concatenated in leaf order."""
    leaves = [jnp.ravel(leaf) for leaf in jax.tree.leaves(_leaf_subset(params))]
    dtype = jnp.result_type(*leaves)
    return jnp.concatenate([leaf.astype(dtype) for leaf in leaves])


@functools.partial(jax.jit, static_argnums=0)
def _select_draws(select: Callable[[Params], ArrayTree], samples: Params) -> ArrayTree:
    return jax.vmap(jax.vmap(select))(samples)


def _weight_stats(samples: Params, select: Callable[[Params], Array] | None) -> dict[str, Array]:
    return _stats(_select_draws(select or _default_select, samples))


def weight_space(posterior: Posterior, select: Callable[[Params], Array] | None = None) -> dict[str, Array]:
    """Split R-hat and bulk ESS of chosen weights.

    Weight-space R-hat of a neural network is dominated by its symmetries
    (permuted hidden units, sign flips): chains in equivalent modes look
    unconverged. Prefer :func:`function_space` for BNNs; weight space is exact
    for models without such symmetries (linear and GLM posteriors).

    Args:
      posterior: a Markov chain :class:`~bayesjax.run.Posterior` (see
        :func:`chain_samples`; diverged chains are excluded with a warning).
      select: maps one sample's params to an array of the weights to check.
        Default: the first (up to) 20 entries of each leaf, flattened and
        concatenated, a fixed-size subset so the cost does not grow with the
        network.

    Returns:
      ``{"rhat": [...], "ess": [...]}`` arrays shaped like ``select``'s output.

    Example:
      >>> d = bj.diagnostics.weight_space(post, select=lambda p: p["Dense_1"]["bias"])
      >>> d["rhat"].max(), d["ess"].min()
    """
    return _weight_stats(chain_samples(posterior), select)


# --------------------------------------------------------------------------- function space


@functools.partial(jax.jit, static_argnames=("apply", "likelihood", "chunk_size"))
def _predictions(samples: Params, x_probe: Array, apply: ApplyFn, likelihood: Likelihood,
                 chunk_size: int | None) -> Array:
    """Per-sample predictions ``[C, K, N, ...]``; one vmapped forward pass per chunk of samples."""

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


def _function_stats(samples: Params, apply: ApplyFn, x_probe: Array, likelihood: Likelihood,
                    chunk_size: int | None = None) -> dict[str, Array]:
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _stats(_predictions(samples, jnp.asarray(x_probe), apply, likelihood, chunk_size))


def function_space(posterior: Posterior, apply: ApplyFn, x_probe: Array, likelihood: Likelihood,
                   chunk_size: int | None = None) -> dict[str, Array]:
    """Split R-hat and bulk ESS of the predictions at probe inputs.

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
      posterior: a Markov chain :class:`~bayesjax.run.Posterior`.
      apply: the model ``apply(params, x) -> outputs``.
      x_probe: probe inputs ``[N, ...]`` (a few dozen test points suffice).
      likelihood: the observation model used for the run.
      chunk_size: samples evaluated at once (default: all C K in one vmap);
        bounds the forward pass memory.

    Returns:
      ``{"rhat": ..., "ess": ...}``, each ``[N, C_out]`` (classification) or
      ``[N]`` (regression).

    Example:
      >>> d = bj.diagnostics.function_space(post, model.apply, ds.x_test[:64], lik)
      >>> float(d["rhat"].max())
    """
    return _function_stats(chain_samples(posterior), apply, x_probe, likelihood, chunk_size)


# --------------------------------------------------------------------------- summary and ArviZ


def _info_field(info, name: str):
    if isinstance(info, dict):
        return info.get(name)
    return getattr(info, name, None) if hasattr(info, "_fields") else None


def _info_fields(info) -> dict[str, Array]:
    if isinstance(info, dict):
        return dict(info)
    if hasattr(info, "_fields"):
        return {name: getattr(info, name) for name in info._fields}
    return {}


def _nan_reduce(reduce, tree) -> float:
    leaves = [jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)]
    values = np.asarray(jnp.concatenate(leaves)) if leaves else np.array([np.nan])
    if values.size == 0 or np.all(np.isnan(values)):
        return float("nan")
    return float(reduce(values))


def summary(posterior: Posterior, apply: ApplyFn | None = None, x_probe: Array | None = None,
            likelihood: Likelihood | None = None, *, select: Callable[[Params], Array] | None = None,
            burnin: int = 0) -> dict[str, float]:
    """Worst-case convergence numbers of a Markov chain run, as plain floats.

    Keys:

    * ``rhat_max``, ``ess_min``: over the weights chosen by ``select`` (see
      :func:`weight_space`); NaN entries (constant weights) are ignored.
    * ``function_rhat_max``, ``function_ess_min``: over the probe predictions
      (see :func:`function_space`), when ``apply``, ``x_probe`` and
      ``likelihood`` are all given.
    * ``num_chains`` (healthy chains used), ``num_draws`` (per chain),
      ``num_divergent_chains``.
    * ``acceptance_rate``: mean of ``info.acceptance_rate`` over the steps
      after ``burnin`` and the healthy chains, when the info has that field
      (HMC, NUTS).
    * ``divergent_transitions``: how many transitions after ``burnin`` had
      ``info.is_divergent`` (HMC/NUTS energy errors, which do not stop a
      chain), when the info has that field.
    * ``step_size``: the final step size, averaged over healthy chains: the
      chain state's ``step_size`` (the adapted, un-jittered value of HMC/NUTS)
      when it has one, else the last step's ``info.step_size``.

    Args:
      posterior: a Markov chain :class:`~bayesjax.run.Posterior`.
      apply, x_probe, likelihood: for the function-space numbers.
      select: weights to check (default: the first 20 entries of each leaf).
      burnin: the run's burn-in; the acceptance rate averages only the steps
        after it. The posterior does not record the run's burn-in, so with the
        default 0 the warm-up steps are included.

    Returns:
      A ``dict[str, float]``.

    Example:
      >>> bj.diagnostics.summary(post, model.apply, x_test[:32], lik, burnin=1000)
    """
    function_args = (apply, x_probe, likelihood)
    if any(a is not None for a in function_args) and any(a is None for a in function_args):
        raise ValueError("function-space diagnostics need all of apply, x_probe and likelihood")
    samples, healthy = _chain_samples(posterior, "diagnostics")
    num_draws = jax.tree.leaves(samples)[0].shape[1]
    weights = _weight_stats(samples, select)
    result = {
        "rhat_max": _nan_reduce(np.nanmax, weights["rhat"]),
        "ess_min": _nan_reduce(np.nanmin, weights["ess"]),
    }
    if apply is not None:
        functions = _function_stats(samples, apply, x_probe, likelihood)
        result["function_rhat_max"] = _nan_reduce(np.nanmax, functions["rhat"])
        result["function_ess_min"] = _nan_reduce(np.nanmin, functions["ess"])
    result["num_chains"] = float(len(healthy))
    result["num_draws"] = float(num_draws)
    result["num_divergent_chains"] = float(len(posterior.divergences))

    acceptance = _info_field(posterior.info, "acceptance_rate")
    if acceptance is not None:
        steps = np.asarray(acceptance)[burnin:, healthy]
        result["acceptance_rate"] = float(np.mean(steps)) if steps.size else float("nan")
    divergent = _info_field(posterior.info, "is_divergent")
    if divergent is not None:
        result["divergent_transitions"] = float(np.sum(np.asarray(divergent)[burnin:, healthy]))
    nominal = getattr(posterior.state.inner, "step_size", None)  # HMC/NUTS state: the adapted step size
    last_used = _info_field(posterior.info, "step_size")
    if nominal is not None:
        result["step_size"] = float(np.mean(np.asarray(nominal)[healthy]))
    elif last_used is not None:
        result["step_size"] = float(np.mean(np.asarray(last_used)[-1, healthy]))
    return result


_ARVIZ_NAMES = {  # bayesjax / blackjax info fields -> ArviZ's sample_stats conventions
    "is_divergent": "diverging",
    "log_density": "lp",
    "num_integration_steps": "n_steps",
    "num_trajectory_expansions": "tree_depth",
}


def _kept_steps(posterior: Posterior, healthy: np.ndarray, num_draws: int, burnin: int, thin: int):
    """Step indices ``[C, K]`` whose positions are the draws, or None if burnin/thin do not fit the run."""
    info_fields = _info_fields(posterior.info)
    if not info_fields:
        return None
    num_steps = np.shape(jax.tree.leaves(posterior.info)[0])[0]
    t = np.arange(1, num_steps + 1)[:, None]
    keep = (t > burnin) & ((t - burnin) % thin == 0)
    is_sample = info_fields.get("is_sample")
    if is_sample is not None:
        keep = keep & np.asarray(is_sample, bool)
    keep = np.broadcast_to(keep, (num_steps, posterior.num_chains))[:, healthy]
    collected = np.asarray(posterior.state.num_collected)[healthy]
    if np.any(keep.sum(0) != collected):
        return None
    order = np.argsort(~keep, axis=0, kind="stable")  # kept steps first, in time order
    rows = collected[None, :] - num_draws + np.arange(num_draws)[:, None]
    return np.take_along_axis(order, rows, axis=0).T  # [C, K]


def _leaf_name(path) -> str:
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return ".".join(parts) or "x"


def to_arviz(posterior: Posterior, select: Callable[[Params], ArrayTree] | None = None, *,
             burnin: int = 0, thin: int = 1):
    """The chains as an :class:`arviz.InferenceData` (needs ``pip install 'bayesjax[arviz]'``).

    The ``posterior`` group holds one variable per leaf of ``select(params)``,
    named by its path (``"Dense_0.kernel"``), with dims ``(chain, draw, ...)``;
    diverged chains are excluded with a warning. Per-step info fields that are
    one number per step and chain (``acceptance_rate``, ``step_size``,
    ``is_divergent`` as ``diverging``, ``log_density`` as ``lp``, ...) go into
    ``sample_stats`` at the steps whose positions are the draws, located from
    the run's ``burnin`` and ``thin``; when those do not reproduce the number of
    collected draws, ``sample_stats`` is left out with a warning.

    Args:
      posterior: a Markov chain :class:`~bayesjax.run.Posterior`.
      select: maps one sample's params to a pytree of what to export. Default:
        the first (up to) 20 entries of every leaf, flattened (use
        ``lambda p: p`` for every weight).
      burnin: the run's ``burnin``.
      thin: the run's ``thin``.

    Returns:
      An ``arviz.InferenceData``.

    Raises:
      ImportError: arviz is not installed.

    Example:
      >>> idata = bj.diagnostics.to_arviz(post, burnin=1000, thin=10)
      >>> az.summary(idata)
    """
    try:
        import arviz as az
    except ImportError as error:
        raise ImportError("to_arviz needs arviz: pip install 'bayesjax[arviz]'") from error
    samples, healthy = _chain_samples(posterior, "ArviZ export")
    num_draws = jax.tree.leaves(samples)[0].shape[1]
    chosen = _select_draws(select or _leaf_subset, samples)
    leaves, _ = jax.tree_util.tree_flatten_with_path(chosen)
    draws = {_leaf_name(path): np.asarray(leaf) for path, leaf in leaves}

    sample_stats = None
    fields = {name: value for name, value in _info_fields(posterior.info).items()
              if name != "is_sample" and isinstance(value, (jax.Array, np.ndarray)) and np.ndim(value) == 2}
    if fields:
        steps = _kept_steps(posterior, healthy, num_draws, burnin, thin)
        if steps is None:
            warnings.warn(
                f"sample_stats left out: burnin={burnin}, thin={thin} do not reproduce the collected "
                "draws; pass the burnin and thin given to bj.run", UserWarning, stacklevel=2,
            )
        else:
            sample_stats = {
                _ARVIZ_NAMES.get(name, name): np.asarray(value)[steps, healthy[:, None]]
                for name, value in fields.items()
            }
    return az.from_dict(posterior=draws, sample_stats=sample_stats)

