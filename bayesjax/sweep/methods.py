"""The sweep's method table: one declarative entry per method, all targeting the same tempered posterior.

Every method targets the tempered posterior of :func:`bayesjax.log_joint`
(Wenzel et al. 2020, "How good is the Bayes posterior in deep neural networks
really?"), whose temperature T is a traced value, so a grid of T compiles once:

    posterior tempering:   log p_T(theta | D) = [log p(D | theta) + log p(theta)] / T
    likelihood tempering:  log p_T(theta | D) = log p(D | theta) / T + log p(theta)

* ``sgld``, ``sghmc``, ``cyclical_sgld``: SG-MCMC chains (Welling & Teh 2011;
  Chen et al. 2014; Zhang et al. 2020) with drift unchanged and injected noise
  scaled by sqrt(T); ``num_chains`` chains per cell, positions kept after
  ``burnin`` every ``thin`` steps. They report the honest-temperature checks of
  :mod:`bayesjax.sweep.temperature`.
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
  all layers needs dense layers only (``mlp``).

VI and Laplace fit one approximation per cell (``num_chains``, ``burnin`` and
``thin`` do not apply); the SG-MCMC diagnostics do not apply to them and are NaN.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from bayesjax.base import Algorithm
from bayesjax.chains import pooled_sample
from bayesjax.inference import laplace, map as map_, sgmcmc, vi
from bayesjax.inference.laplace.glm import predictive_glm
from bayesjax.predictive import predictive
from bayesjax.sweep.temperature import sgmcmc_checks

VI_INIT_SCALE = 1e-2
"""q's initial sigma at T = 1; at temperature T it is ``VI_INIT_SCALE * sqrt(T)``."""


def predict_from_draws(lj, config, algorithm, states, key, inputs) -> tuple:
    """The Bayesian model average over ``num_predictive_samples`` draws pooled over chains (or fits).

    Args:
      lj: the cell's log-joint (its ``apply`` and ``likelihood``). config: the :class:`SweepConfig`.
      algorithm: the algorithm whose ``sample`` draws from ``states`` (leading chain axis).
      key: PRNG key of the draws. inputs: input arrays; the same draws serve each.

    Returns:
      One :class:`~bayesjax.predictive.Predictive` per input array.
    """
    samples = pooled_sample(algorithm, key, states, config.num_predictive_samples)
    return tuple(predictive(lj.apply, samples, x, lj.likelihood) for x in inputs)


class Method(NamedTuple):
    """How a sweep runs one method with a traced temperature.

    Attributes:
      build: ``(log_joint, config) -> Algorithm``, run for ``num_steps`` by the driver.
      chains: True for Markov chains (``num_chains`` of them, with a sample
        buffer); False for one fit per cell that samples from its own q.
      posthoc: ``(log_joint, config, states, x, y) -> (algorithm, states)``
        applied after training (Laplace: the curvature pass), or None.
      predict: ``(log_joint, config, algorithm, states, key, inputs) -> predictives``,
        one per input array (default: :func:`predict_from_draws`).
      diagnostics: ``(log_joint, config, algorithm, states, info, key, x, y) -> dict``
        of honest-temperature checks, or None where they do not apply (NaN).
      models: the models the method supports.
    """

    build: Callable
    chains: bool
    posthoc: Callable | None = None
    predict: Callable = predict_from_draws
    diagnostics: Callable | None = None
    models: tuple[str, ...] = ("mlp", "cnn")


def _meanfield_vi(lj, config) -> Algorithm:
    return vi.build_meanfield(lj, optax.adam(config.learning_rate),
                              init_scale=VI_INIT_SCALE * jnp.sqrt(lj.temperature))


def _map(lj, config) -> Algorithm:
    return map_.build(lj, optax.adam(config.learning_rate))


def laplace_at_map(hessian: str, subset: str, lj, config, states, x, y):
    """The tempered Laplace posterior at each fit's MAP: one streaming-Laplace step over all of ``(x, y)``.

    Args:
      hessian: ``"diag"`` or ``"kfac"``. subset: ``"all"`` or ``"last_layer"``.
      lj: the tempered log-joint (its T and tempering set P, see the module docstring).
      config: unused (the table's common signature).
      states: MAP states with a leading fit axis.
      x, y: the training set (the curvature is summed over it, in chunks).

    Returns:
      The streaming-Laplace algorithm and its states (one per fit).
    """
    del config
    algorithm = laplace.build(lj, hessian, subset=subset)

    def fit(params):
        state, _ = algorithm.step(None, algorithm.init(None, params), (x, y))
        return state

    return algorithm, jax.vmap(fit)(states.params)


def predict_laplace(hessian: str, subset: str, lj, config, algorithm, states, key, inputs) -> tuple:
    """The GLM predictive (probit link) of the one fit's Laplace posterior, or weight draws (``"mc"``).

    Runs cell by cell under the sweep's vmap (``sequential_vmap``): the KFAC
    factorization's ``eigh`` batched over cells deadlocked jaxlib's CPU thread
    pool (its LAPACK kernel waits on batch tasks queued behind other waiting
    kernels: digits MLP 50-50, 2 or more cells per device).
    """
    del algorithm  # rebuilt per cell below, from that cell's temperature

    @jax.custom_batching.sequential_vmap
    def predict(temperature, states, key, inputs):
        cell_lj = dataclasses.replace(lj, temperature=temperature)
        if config.laplace_predictive == "mc":
            algorithm = laplace.build(cell_lj, hessian, subset=subset)
            return predict_from_draws(cell_lj, config, algorithm, states, key, inputs)
        post = laplace.from_state(cell_lj, jax.tree.map(lambda leaf: leaf[0], states), hessian, subset=subset)
        return tuple(predictive_glm(post, x, "probit", key=key, num_samples=config.num_predictive_samples)
                     for x in inputs)

    return predict(lj.temperature, states, key, inputs)


def _laplace(hessian: str, subset: str, models: tuple[str, ...] = ("mlp", "cnn")) -> Method:
    return Method(_map, chains=False, posthoc=functools.partial(laplace_at_map, hessian, subset),
                  predict=functools.partial(predict_laplace, hessian, subset), models=models)


METHODS: dict[str, Method] = {
    "sgld": Method(lambda lj, c: sgmcmc.build_sgld(lj, c.step_size), chains=True,
                   diagnostics=functools.partial(sgmcmc_checks, momentum=False)),
    "sghmc": Method(lambda lj, c: sgmcmc.build_sghmc(lj, c.step_size, c.friction), chains=True,
                    diagnostics=functools.partial(sgmcmc_checks, momentum=True)),
    "cyclical_sgld": Method(lambda lj, c: sgmcmc.build_cyclical_sgld(lj, c.step_size, c.num_cycles, c.num_steps),
                            chains=True, diagnostics=functools.partial(sgmcmc_checks, momentum=False)),
    "meanfield_vi": Method(_meanfield_vi, chains=False),
    "laplace_diag": _laplace("diag", "all"),
    "laplace_kfac": _laplace("kfac", "all", models=("mlp",)),
    "laplace_last_layer": _laplace("kfac", "last_layer"),
}
