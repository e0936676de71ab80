"""Honest temperatures: was the nominal T of an SG-MCMC cell really sampled?

At small T the minibatch gradient noise can exceed the injected noise, so the
chain samples a hotter distribution than the nominal one (Wenzel et al. 2020,
"How good is the Bayes posterior in deep neural networks really?", Sec. 4 and
App. I). Each SG-MCMC cell reports the ratio of the two noises and the
configurational / kinetic temperature estimates. They are defined for
Markov chains only: VI and Laplace cells report NaN. Their full-data and
minibatch gradients run in chunks sized from a memory budget
(:mod:`bayesjax.memory`), so they fit on any data set size.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from optax.tree_utils import tree_vdot

from bayesjax import memory
from bayesjax.chains import pooled_sample
from bayesjax.trees import num_params

CHECKS = ("grad_noise_ratio", "configurational_temperature", "kinetic_temperature")


def per_draw_size(stacked) -> int:
    """Entries of one draw of a tree whose leaves stack draws on a leading axis."""
    return num_params(stacked) // len(jax.tree.leaves(stacked)[0])


def configurational_temperature(potential: Callable, samples, batch_size: int | None = None) -> jax.Array:
    """<theta . grad U(theta)> / d over samples (leading axis), = T under exp(-U / T).

    By integration by parts E[theta_i dU/dtheta_i] = T for each coordinate
    (Wenzel et al. 2020, App. I), so a sampler that reaches the nominal
    temperature gives T back. The virial theta . grad U(theta) is the
    derivative of U along theta itself, d/ds U(s theta) at s = 1: one
    forward-mode pass (``jax.jvp``), which costs about half a gradient (on
    the Fashion-MNIST MLP 0.60 s against 1.17 s for 8 full-data draws; the
    tangent of a first layer's product x W along W is x W again). The
    samples are taken ``batch_size`` at a time (a ``lax.map``; default one
    after another), so one full-data pass is alive at once.

    Args:
      potential: U, a function of the parameters (on the full data set).
      samples: draws with a leading axis.
      batch_size: draws evaluated at once.
    """
    virial = jax.lax.map(lambda p: jax.jvp(potential, (p,), (p,))[1], samples, batch_size=batch_size)
    return jnp.mean(virial) / per_draw_size(samples)


def gradient_cost(lj, samples, data) -> tuple[float, float]:
    """``(bytes per example, fixed bytes)`` of one sample's log-likelihood gradient on ``data`` (:func:`bayesjax.memory.example_cost`)."""
    one = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), samples)

    return memory.example_cost(jax.grad(lj.summed_log_likelihood), one, data)


MOMENTUM_MEMORY = 512
"""Steps of a chain's step-size history that :func:`momentum_step_size` weighs ((1 - alpha)^1024 < 1e-11 at alpha = 0.025)."""


def kinetic_temperature(momentum, step_size, preconditioner=None) -> jax.Array:
    """<v^T G^-1 v> / (d eps) for SGHMC momenta v in position units (v = sqrt(eps G) p, p ~ N(0, T)).

    ``preconditioner``: Wenzel et al.'s layerwise G (one scalar per leaf;
    ``None``: 1), under which a layer's momenta are sqrt(G) wider: without
    dividing by G the estimate is T times the mean G. ``step_size``: eps,
    see :func:`momentum_step_size`. (With neither, the Fashion-MNIST MLP
    preset's cells reported 52 at T = 1.)
    """
    if preconditioner is None:
        return tree_vdot(momentum, momentum) / num_params(momentum) / step_size
    energy = sum(jnp.sum(jnp.square(v) / g) for v, g in zip(jax.tree.leaves(momentum), jax.tree.leaves(preconditioner)))
    return energy / num_params(momentum) / step_size


def momentum_step_size(step_sizes, friction) -> jax.Array:
    """The step eps that the momenta's spread reflects: ``sum_j w_j eps_(t-j) / sum_j w_j``, ``w_j = (1 - alpha)^(2j)``.

    The injected noise of step ``t - j`` is damped by ``(1 - alpha)^j`` in
    ``v_t``, so its variance counts with ``(1 - alpha)^(2j)``: for a constant
    step this is that step; at the end of a cyclical schedule (Zhang et al.
    2020), whose last step is about 1e-6 of its first, it is the recent steps'
    average, where the last step alone overstated the kinetic temperature.

    Args:
      step_sizes: eps per step, ``[num_steps, ...]`` (the last :data:`MOMENTUM_MEMORY` are read).
      friction: alpha.
    """
    recent = step_sizes[-MOMENTUM_MEMORY:]
    weights = (1.0 - friction) ** (2.0 * jnp.arange(recent.shape[0] - 1, -1, -1))
    return jnp.tensordot(weights, recent, axes=1) / jnp.sum(weights)


def gradient_noise_ratio(minibatch_grads, step_size, temperature, friction=1.0) -> jax.Array:
    """Minibatch-gradient noise over injected noise, per coordinate and step.

    An SG-MCMC step adds eps^2 Var[grad U_B] of gradient noise to the injected
    2 alpha eps T (alpha = 1 for SGLD); the nominal T is only sampled when this
    ratio is << 1 (Wenzel et al. 2020, Sec. 4).

    Args:
      minibatch_grads: gradients of U on several minibatches at one position
        (leaves with a leading batch axis).
      step_size: eps. temperature: T. friction: alpha (SGHMC), 1 for SGLD.
    """
    variance = sum(jnp.sum(jnp.var(g, axis=0)) for g in jax.tree.leaves(minibatch_grads))
    variance = variance / per_draw_size(minibatch_grads)
    return step_size * variance / (2 * friction * temperature)


def sgmcmc_checks(lj, config, algorithm, states, info, key, x, y, *, momentum: bool,
                  memory_budget: int | None = None) -> dict:
    """The honest-temperature diagnostics of an SG-MCMC cell, averaged over chains.

    Memory stays bounded on any data size: the configurational temperature's
    8 draws are taken one after another, each with its virial from a
    full-data forward-mode pass folded over chunks of the data
    (:meth:`~bayesjax.logjoint.LogJoint.full`); the noise
    ratio's minibatch gradients run chain after chain, as many minibatches
    at once as fit. Chunk sizes fit ``memory_budget`` bytes (default
    :data:`bayesjax.memory.DEFAULT_BUDGET`).

    Args:
      lj: the cell's tempered log-joint. config: the :class:`~bayesjax.experiments.sweep.config.SweepConfig`.
      algorithm: the buffered chain algorithm. states: its final states
        (leading chain axis). info: per-step infos ``[num_steps, chains]``.
      key: PRNG key of the checks. x, y: the training data.
      momentum: SGHMC-style state (kinetic temperature defined, noise scaled by friction).
      memory_budget: bytes of intermediates one chunk may take.

    Returns:
      ``{name: scalar}`` for the names in :data:`CHECKS` (kinetic NaN without momentum).
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    grad_potential = jax.grad(lj.potential)
    noise_key, sample_key = jax.random.split(key)
    step_size = info.step_size[-1] / lj.num_data  # the Langevin step eps = lr / N of a learning rate per example
    friction = config.friction if momentum else 1.0
    per_example, fixed = gradient_cost(lj, states.inner.position, (x, y))
    batches_at_once = memory.chunk_sizes(8, 1, config.batch_size * per_example, fixed, budget=memory_budget)[0]
    data_chunk = memory.chunk_sizes(1, x.shape[0], per_example, fixed, budget=memory_budget)[1]

    def chain_noise_ratio(args):
        position, eps, chain_key = args
        index = jax.vmap(lambda k: jax.random.choice(k, x.shape[0], (config.batch_size,), replace=False))(
            jax.random.split(chain_key, 8)
        )
        grads = jax.lax.map(lambda i: grad_potential(position, (x[i], y[i])), index, batch_size=batches_at_once)
        return gradient_noise_ratio(grads, eps, lj.temperature, friction)

    ratio = jnp.mean(jax.lax.map(chain_noise_ratio, (states.inner.position, step_size,
                                                      jax.random.split(noise_key, config.num_chains))))
    samples = pooled_sample(algorithm, sample_key, states, 8)
    configurational = configurational_temperature(lambda p: -lj.temperature * lj.full(p, (x, y), data_chunk),
                                                   samples)
    kinetic = jnp.array(jnp.nan, configurational.dtype)
    if momentum:
        momentum_step = momentum_step_size(info.step_size / lj.num_data, friction)
        kinetic = jnp.mean(jax.vmap(kinetic_temperature)(states.inner.momentum, momentum_step,
                                                          getattr(states.inner, "preconditioner", None)))
    return dict(zip(CHECKS, (ratio, configurational, kinetic)))
