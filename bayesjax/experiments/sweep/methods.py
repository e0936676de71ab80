"""How a sweep cell runs a method of :data:`bayesjax.experiments.sweep.config.METHODS` with a traced temperature.

Every method targets the tempered posterior of :func:`bayesjax.log_joint`
(Wenzel et al. 2020, "How good is the Bayes posterior in deep neural networks
really?"), whose temperature T is a traced value, so a grid of T compiles once:

    posterior tempering:   log p_T(theta | D) = [log p(D | theta) + log p(theta)] / T
    likelihood tempering:  log p_T(theta | D) = log p(D | theta) / T + log p(theta)

* ``sgld``, ``sghmc``, ``cyclical_sgld``: SG-MCMC chains (Welling & Teh 2011;
  Chen et al. 2014; Zhang et al. 2020) with drift unchanged and injected noise
  scaled by sqrt(T); ``num_chains`` chains per cell, positions kept after
  ``burnin`` every ``thin`` steps. They report the honest-temperature checks of
  :mod:`bayesjax.experiments.sweep.temperature`.
* ``meanfield_vi``: Bayes by Backprop (Blundell et al. 2015) ascending the
  tempered ELBO with Adam (see :mod:`bayesjax.inference.vi.objective`)::

      ELBO_T(q) = E_q[log p_T(theta | D)] + H[q]
                = (E_q[log p(D | theta)] - KL(q || p)) / T + (1 - 1/T) H[q]   (posterior)
                = E_q[log p(D | theta)] / T - KL(q || p)                      (likelihood)

  q starts at sigma = 0.01 sqrt(T) per weight, since the tempered posterior's
  widths scale as sqrt(T): a cold cell does not spend its budget shrinking q.
* ``laplace_diag``, ``laplace_kfac``, ``laplace_last_layer`` (KFAC on the
  last dense layer, the rest at the MAP): MAP training with Adam on the
  tempered log-joint (under posterior tempering the mode does not move with
  T), then one streaming-Laplace pass over the training set for the GGN K at
  the MAP (MacKay 1992; Ritter et al. 2018 for KFAC; Daxberger et al. 2021),
  giving q = N(theta_MAP, P^-1) with the negative Hessian of the tempered
  log-joint

      P = (K + Delta) / T   (posterior),    P = K / T + Delta   (likelihood),

  Delta the Gaussian prior's precision. Its predictive is the linearized (GLM)
  one with the probit link (Immer et al. 2021), as ``bayesjax compare``, or
  the average over weight draws with ``laplace_predictive="mc"``. KFAC over
  all layers needs dense layers only (``mlp``). With ``laplace_prior`` each
  cell tunes Delta (one value for every weight) at its own T, the MAP and K
  fixed: the Laplace evidence's maximum (``"evidence"``), or the value of the
  grid G = {1e-4, ..., 1e4} whose GLM predictive has the least NLL on the n
  examples held out of the training set (``"validation"``; Daxberger et al.
  2021, laplace-torch's ``gridsearch``),

      Delta* = argmin_{Delta in G} -1/n sum_i log p(y_i | x_i, D; Delta),

  and records the value used as ``prior_precision``
  (:mod:`bayesjax.experiments.validation`).

VI and Laplace fit one approximation per cell (``num_chains``, ``burnin`` and
``thin`` do not apply); the SG-MCMC diagnostics do not apply to them and are NaN.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from bayesjax.chains import pooled_sample
from bayesjax.experiments.recipes import VI_INIT_SCALE, Settings
from bayesjax.experiments.sweep.config import SweepConfig
from bayesjax.experiments.validation import tune_prior
from bayesjax.inference import laplace
from bayesjax.inference.laplace.glm import predictive_glm
from bayesjax.logjoint import LogJoint
from bayesjax.predictive import predictive


def settings(lj: LogJoint, config: SweepConfig) -> Settings:
    """A cell's hyperparameters: the configuration's, VI's initial sigma scaled by sqrt(T) of the cell's ``lj``."""
    return Settings(num_steps=config.num_steps, learning_rate=config.learning_rate, step_size=config.step_size,
                    sghmc_step_size=config.step_size, friction=config.friction,
                    num_cycles=config.cycles(lj.num_data)[0],
                    precondition_every=max(1, lj.num_data // config.batch_size) if config.layerwise_preconditioner
                    else None,
                    vi_init_scale=VI_INIT_SCALE * jnp.sqrt(lj.temperature))


def predict_from_draws(lj, config, algorithm, states, key, inputs, memory_budget: int | None = None) -> tuple:
    """The Bayesian model average over ``num_predictive_samples`` draws pooled over chains (or fits).

    :func:`bayesjax.predictive` streams over chunks of the inputs and of the
    draws sized from the memory budget (:mod:`bayesjax.memory`), so a
    10,000-image test set never meets all draws at once.

    Args:
      lj: the cell's log-joint (its ``apply`` and ``likelihood``). config: the :class:`SweepConfig`.
      algorithm: the algorithm whose ``sample`` draws from ``states`` (leading chain axis).
      key: PRNG key of the draws. inputs: input arrays; the same draws serve each.
      memory_budget: bytes one chunk of the predictive may take (default :data:`bayesjax.memory.DEFAULT_BUDGET`).

    Returns:
      One :class:`~bayesjax.predictive.Predictive` per input array.
    """
    samples = pooled_sample(algorithm, key, states, config.num_predictive_samples)
    return tuple(predictive(lj.apply, samples, x, lj.likelihood, memory_budget=memory_budget) for x in inputs)


def laplace_at_map(hessian: str, subset: str, lj, states, x, y):
    """The tempered Laplace posterior at each fit's MAP: one streaming-Laplace step over all of ``(x, y)``.

    Args:
      hessian: ``"diag"`` or ``"kfac"``. subset: ``"all"`` or ``"last_layer"``.
      lj: the tempered log-joint (its T and tempering set P, see the module docstring).
      states: MAP states with a leading fit axis.
      x, y: the training set (the curvature is summed over it, in chunks).

    Returns:
      The streaming-Laplace algorithm and its states (one per fit).
    """
    algorithm = laplace.build(lj, hessian, subset=subset)

    def fit(params):
        state, _ = algorithm.step(None, algorithm.init(None, params), (x, y))
        return state

    return algorithm, jax.vmap(fit)(states.params)


def predict_laplace(hessian: str, subset: str, lj, config, states, key, inputs, validation=None) -> tuple:
    """The one fit's Laplace posterior, its prior precision set as ``config.laplace_prior`` says, and its
    GLM predictive (probit link) or weight draws (``"mc"``).

    :func:`~bayesjax.experiments.validation.tune_prior` sets the prior
    precision ``Delta`` of the cell's tempered posterior, ``P = (K + Delta) / T``
    or ``K / T + Delta`` at the cell's T: the prior's own (``"untuned"``), the
    evidence's maximum, or the grid value whose GLM predictive has the least
    NLL on ``validation`` (``(x_val, y_val)``, held out of the training set),
    whichever the predictive. Both predictives stream over chunks of the
    inputs sized from the memory budget
    (:func:`~bayesjax.inference.laplace.glm.predictive_glm`, :func:`predict_from_draws`).

    Runs cell by cell under the sweep's vmap (``sequential_vmap``): the KFAC
    factorization's ``eigh`` batched over cells deadlocked jaxlib's CPU thread
    pool (its LAPACK kernel waits on batch tasks queued behind other waiting
    kernels: digits MLP 50-50, 2 or more cells per device).

    Returns:
      ``(predictives, prior_precision)``: one predictive per input array, and
      the precision used (a scalar; untuned, the first Bayesian leaf's).
    """

    @jax.custom_batching.sequential_vmap
    def predict(temperature, states, key, inputs, validation):
        cell_lj = dataclasses.replace(lj, temperature=temperature)  # the algorithm is rebuilt per cell
        post = laplace.from_state(cell_lj, jax.tree.map(lambda leaf: leaf[0], states), hessian, subset=subset)
        post, precision = tune_prior(post, config.laplace_prior, validation)
        if config.laplace_predictive == "mc":
            tuned = None if config.laplace_prior == "untuned" else precision
            algorithm = laplace.build(cell_lj, hessian, subset=subset, prior_precision=tuned)
            return predict_from_draws(cell_lj, config, algorithm, states, key, inputs), precision
        return tuple(predictive_glm(post, x, "probit", key=key, num_samples=config.num_predictive_samples)
                     for x in inputs), precision

    return predict(lj.temperature, states, key, inputs, validation)
