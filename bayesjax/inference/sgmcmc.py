"""Stochastic-gradient MCMC: SGLD, preconditioned SGLD, SGHMC (cyclical schedules: :mod:`bayesjax.inference.cyclical`).

All samplers target the tempered posterior of the log-joint,
p_T(theta | D) ∝ exp(-U(theta) / T) with U = -T ``log_joint`` the potential
(temperature and tempering mode live in the :class:`~bayesjax.logjoint.LogJoint`).

**Step sizes are learning rates per example.** A step size lr multiplies the
gradient of the per-example loss U / N (:meth:`~bayesjax.logjoint.LogJoint.loss`,
the mean negative log-likelihood plus the prior's 1/N share), the convention
of Zhang et al. (2020) and Wenzel et al. (2020): the Langevin step on U is
eps = lr / N. So one learning rate means the same on 1,437 and on 60,000
examples. Following Wenzel et al. the drift does not change with T; only the
injected noise is scaled by sqrt(T):

    theta <- theta - lr grad (U / N) + sqrt(2 lr T / N) xi,   xi ~ N(0, I),

which is Langevin dynamics for p_T with step eps = lr / N. One learning rate is
therefore stable from T = 1 down to T = 1e-4. Noise is drawn leaf by leaf
(:func:`bayesjax.noise.normal_like`, both words of each Threefry hash used:
on a CPU the draw costs as much as a small network's gradient), so each leaf
keeps its sharding.

The file is one concept, the SG-MCMC family: its samplers share the drift,
the noise and the state, and each builder documents its update in full.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.checks import check_int, check_positive, concrete
from bayesjax.logjoint import LogJoint
from bayesjax.noise import normal_like, normal_like_where
from bayesjax.trees import repeat_params
from bayesjax.types import Array, Batch, Params, PRNGKey

StepSize = float | Array | Callable[[Array], Array]
"""A constant learning rate per example or an optax-style schedule ``count -> learning rate``."""


class SGLDState(NamedTuple):
    """Position, step counter and (pSGLD) RMSprop second-moment estimate."""

    position: Params
    count: Array
    square_avg: Params | None


class SGHMCState(NamedTuple):
    """Position, momentum (in units of a position increment), step counter and the layerwise preconditioner.

    ``square_avg`` (RMSprop average of the squared per-example gradient) and
    ``preconditioner`` (one scalar G_l per leaf) are None without preconditioning.
    """

    position: Params
    momentum: Params
    count: Array
    square_avg: Params | None = None
    preconditioner: Params | None = None


class SGMCMCInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
      log_density: minibatch estimate of the tempered log-joint at the step's start.
      step_size: the learning rate per example used (the Langevin step is it over N).
      is_sample: False in the exploration phase of cyclical schedules (no
        noise; the sample buffer skips the position).
    """

    log_density: Array
    step_size: Array
    is_sample: Array


def _schedule(step_size: StepSize) -> Callable[[Array], Array]:
    return step_size if callable(step_size) else (lambda count: jnp.asarray(step_size))


def _always_sample(count: Array) -> Array:
    return jnp.ones((), bool)


def _noise(sampling: Array, key: PRNGKey, position: Params, is_sample: Callable) -> Params:
    """N(0, I) like ``position``; a cyclical schedule's exploration steps skip the draw (their noise scale is 0)."""
    if is_sample is _always_sample:
        return normal_like(key, position)
    return normal_like_where(sampling, key, position)


def _drift(log_joint: LogJoint, position: Params, batch: Batch) -> tuple[Array, Params]:
    """The tempered log-joint and ``-grad U / N``, the drift direction a learning rate multiplies."""
    value, grad = log_joint.value_and_loss_grad(position, batch)
    return value, jax.tree.map(jnp.negative, grad)


def sgld_init(position: Params, preconditioned: bool = False) -> SGLDState:
    """Starts a chain at ``position``."""
    square_avg = jax.tree.map(jnp.zeros_like, position) if preconditioned else None
    return SGLDState(position, jnp.zeros((), jnp.int32), square_avg)


def sgld_step(
    key: PRNGKey,
    state: SGLDState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    step_size: StepSize,
    rmsprop_decay: float = 0.99,
    rmsprop_epsilon: float = 1e-5,
    is_sample: Callable[[Array], Array] = _always_sample,
) -> tuple[SGLDState, SGMCMCInfo]:
    """One (preconditioned) SGLD step (Welling & Teh 2011; Li et al. 2016).

        theta <- theta - lr G grad (U / N) + sqrt(2 lr T G / N) xi

    with learning rate lr = ``step_size`` (per example: the Langevin step is
    lr / N), G = 1 (SGLD) or the RMSprop preconditioner G = 1 / (delta + sqrt(V^)),
    V <- a V + (1 - a) (grad U / N)^2, V^ = V / (1 - a^t) (debiased as in
    Adam) when ``state.square_avg`` is kept (pSGLD). Like Li et al. this drops
    the Gamma correction term, so pSGLD is biased where G varies: on Bayesian
    linear regression its variances come out larger than the exact ones
    (figures in benchmarks/README.md).
    Where ``is_sample(count)`` is False no noise is injected (SGD exploration).
    """
    eps = _schedule(step_size)(state.count)
    sampling = is_sample(state.count)
    value, drift = _drift(log_joint, state.position, batch)
    noise = _noise(sampling, key, state.position, is_sample)
    noise_scale = jnp.where(sampling, jnp.sqrt(2 * eps * log_joint.temperature / log_joint.num_data), 0.0)
    square_avg = state.square_avg
    if square_avg is None:
        position = jax.tree.map(lambda p, g, n: p + eps * g + noise_scale * n, state.position, drift, noise)
    else:
        square_avg = jax.tree.map(lambda v, g: rmsprop_decay * v + (1 - rmsprop_decay) * g**2, square_avg, drift)

        debias = 1 - rmsprop_decay ** (state.count + 1).astype(eps.dtype)

        def update(p, g, n, v):
            precond = 1.0 / (rmsprop_epsilon + jnp.sqrt(v / debias))
            return p + eps * precond * g + noise_scale * jnp.sqrt(precond) * n

        position = jax.tree.map(update, state.position, drift, noise, square_avg)
    return SGLDState(position, state.count + 1, square_avg), SGMCMCInfo(value, eps, sampling)


def sghmc_init(position: Params, preconditioned: bool = False) -> SGHMCState:
    """Starts a chain at ``position`` with zero momentum (and G_l = 1 when ``preconditioned``)."""
    momentum = jax.tree.map(jnp.zeros_like, position)
    if not preconditioned:
        return SGHMCState(position, momentum, jnp.zeros((), jnp.int32))
    return SGHMCState(position, momentum, jnp.zeros((), jnp.int32), jax.tree.map(jnp.ones_like, position),
                      jax.tree.map(lambda p: jnp.ones((), p.dtype), position))


def layerwise_preconditioner(square_avg: Params, epsilon: float) -> Params:
    """Wenzel et al. (2020, App. E)'s layerwise preconditioner: one scalar per leaf.

        s_l = mean_i V_li + delta,   G_l = sqrt(min_k s_k / s_l)  (<= 1)

    so the leaf with the smallest root-mean-square gradient keeps the
    learning rate and the others move more slowly (M_l = 1 / G_l the mass).
    """
    leaves, treedef = jax.tree.flatten(square_avg)
    scale = jnp.stack([jnp.mean(v) for v in leaves]) + epsilon
    gains = jnp.sqrt(jnp.min(scale) / scale)
    return treedef.unflatten([gains[i].astype(v.dtype) for i, v in enumerate(leaves)])


def sghmc_step(
    key: PRNGKey,
    state: SGHMCState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    step_size: StepSize,
    friction: float | Array,
    is_sample: Callable[[Array], Array] = _always_sample,
    precondition_every: int | None = None,
    rmsprop_decay: float = 0.99,
    rmsprop_epsilon: float = 1e-8,
) -> tuple[SGHMCState, SGMCMCInfo]:
    """One SGHMC step (Chen et al. 2014) in the SGD-with-momentum form.

        v     <- (1 - alpha) v - lr G grad (U / N) + sqrt(2 alpha lr T G / N) xi
        theta <- theta + v

    with learning rate per example lr = ``step_size`` = N h^2 and friction
    alpha = h C for leapfrog step h, friction C and unit mass (Chen et al.
    2014, Sec. 3.3; Wenzel et al. 2020, whose ``lr`` this is). G = 1, or with
    ``state.preconditioner`` kept, Wenzel et al.'s layerwise G_l
    (:func:`layerwise_preconditioner`): SGHMC in the coordinates
    M^(1/2) theta, exact for a fixed G, which is why G is refreshed from the
    RMSprop average V <- a V + (1 - a) (grad U / N)^2 only every
    ``precondition_every`` steps (an epoch, as Wenzel et al.).
    """
    eps = _schedule(step_size)(state.count)
    sampling = is_sample(state.count)
    value, drift = _drift(log_joint, state.position, batch)
    noise = _noise(sampling, key, state.position, is_sample)
    noise_scale = jnp.where(sampling, jnp.sqrt(2 * friction * eps * log_joint.temperature / log_joint.num_data), 0.0)
    gains = state.preconditioner if state.preconditioner is not None else jax.tree.map(lambda p: 1.0, state.position)
    momentum = jax.tree.map(
        lambda v, g, n, G: (1 - friction) * v + eps * G * g + noise_scale * jnp.sqrt(G) * n,
        state.momentum, drift, noise, gains,
    )
    position = jax.tree.map(jnp.add, state.position, momentum)
    new_state = SGHMCState(position, momentum, state.count + 1)
    if state.preconditioner is not None:
        square_avg = jax.tree.map(lambda v, g: rmsprop_decay * v + (1 - rmsprop_decay) * g**2, state.square_avg, drift)
        refresh = (state.count + 1) % precondition_every == 0
        preconditioner = jax.tree.map(lambda new, old: jnp.where(refresh, new, old),
                                      layerwise_preconditioner(square_avg, rmsprop_epsilon), state.preconditioner)
        new_state = new_state._replace(square_avg=square_avg, preconditioner=preconditioner)
    return new_state, SGMCMCInfo(value, eps, sampling)


def sample(state: SGLDState | SGHMCState, num_samples: int) -> Params:
    """Copies of the current position; ``bj.run`` wraps chains in a sample buffer."""
    return repeat_params(state.position, num_samples)


def as_algorithm(init_fn, step_fn, log_joint) -> Algorithm:
    """A Markov-chain :class:`~bayesjax.base.Algorithm` of ``init_fn(params)`` and ``step_fn(key, state, batch,
    *, log_joint)`` targeting ``log_joint``, sampling copies of the position."""
    return targeting(
        log_joint,
        lambda key, params: init_fn(params),
        step_fn,
        lambda key, state, num_samples: sample(state, num_samples),
        markov_chain=True,
    )


def check_step_size(step_size: StepSize) -> None:
    """Raises on a step size that is not a positive learning rate per example or a schedule (an optax optimizer)."""
    if hasattr(step_size, "init") and hasattr(step_size, "update"):
        raise TypeError(f"step_size must be a learning rate per example (a float, a traced scalar or an optax "
                        f"schedule count -> lr, e.g. optax.cosine_decay_schedule(0.1, 1000)), got an optimizer "
                        f"{type(step_size).__name__}: SG-MCMC adds its own noise to the gradient step; for an "
                        f"optax optimizer use bj.map(log_joint, optimizer)")
    if callable(step_size):
        return
    value = concrete(step_size)
    if value is not None and value.dtype.kind not in "biuf":
        raise TypeError(f"step_size must be a float, a traced scalar or an optax schedule count -> lr, got "
                        f"{type(step_size).__name__}")
    check_positive("step_size", step_size)


@cached_builder
def build_sgld(
    log_joint: LogJoint,
    step_size: StepSize,
    preconditioned: bool = False,
    rmsprop_decay: float = 0.99,
    rmsprop_epsilon: float = 1e-5,
) -> Algorithm:
    """Stochastic gradient Langevin dynamics (Welling & Teh 2011), optionally pSGLD (Li et al. 2016).

    Update, per step on a minibatch, with learning rate lr = ``step_size``:

        theta <- theta - lr G grad (U / N) + sqrt(2 lr T G / N) xi,   xi ~ N(0, I)

    where U / N = -T ``log_joint`` / N is the per-example loss
    (:meth:`~bayesjax.logjoint.LogJoint.loss`: the batch's mean negative
    log-likelihood plus the prior's 1/N share) and G = 1, or for pSGLD the
    RMSprop preconditioner G = 1 / (delta + sqrt(V^)) (see :func:`sgld_step`).

    Target: the tempered posterior p_T(theta | D) ∝ exp(log_joint) =
    exp(-U / T) of ``log_joint`` (its temperature and tempering rule). T
    enters the noise only: the drift is the same at every T and the noise
    scales with sqrt(T), so one learning rate is stable from T = 1 to 1e-4.
    This is Langevin dynamics with step eps = lr / N on the N-scaled
    log-joint, discretized (no Metropolis correction: the bias grows with lr).

    Step size: a learning rate **per example**, the scale of ``optax.sgd``
    on the mean loss; it means the same on 1,437 and on 60,000 examples.
    There is no default: 0.1 (the default of ``bayesjax sweep``;
    ``bayesjax compare`` uses 0.15) suits standardized inputs and He-scaled networks
    (the digits and Fashion-MNIST MLP and CNN) under a categorical
    likelihood. Under a Gaussian likelihood of noise sigma the loss's
    curvature per example is sigma^-2, so scale the rate by sigma^2 (as
    ``bayesjax compare`` does). Pick another by the SGD rule, a rate at
    which noise-free SGD on the same loss trains stably, and lower it if
    ``post.divergences`` reports diverged chains. An optax schedule
    (``count -> lr``) decays it; ``info.step_size`` records each step's rate.

    State and info: :class:`SGLDState` (``position``, ``count``,
    ``square_avg``: pSGLD's second moment, else None) and
    :class:`SGMCMCInfo` (``log_density``: minibatch estimate of the tempered
    log-joint; ``step_size``; ``is_sample``). ``bj.run`` keeps positions
    after ``burnin`` every ``thin`` steps.

    Args:
      log_joint: the tempered log-joint (minibatch estimate).
      step_size: lr, the learning rate per example (a float, may be traced,
        or an optax schedule): it multiplies the gradient of the per-example
        loss U / N, so the Langevin step is lr / N; it does not change with N or T.
      preconditioned: RMSprop preconditioning (pSGLD, Li et al. 2016).
      rmsprop_decay: a, the second-moment decay of pSGLD.
      rmsprop_epsilon: delta, the preconditioner's damping.

    Returns:
      An :class:`Algorithm` (a Markov chain) over :class:`SGLDState` with :class:`SGMCMCInfo`.

    Example:
      >>> algo = bj.sgld(lj, step_size=0.1)
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=60, batch_size=50,
      ...               num_chains=4, burnin=20, thin=10, progress=False)
      >>> post.sample(key, 16)["Dense_1"]["kernel"].shape   # 4 kept positions per chain
      (16, 16, 10)

    References:
      M. Welling and Y. W. Teh, "Bayesian learning via stochastic gradient
      Langevin dynamics", ICML 2011. C. Li, C. Chen, D. Carlson and L. Carin,
      "Preconditioned stochastic gradient Langevin dynamics for deep neural
      networks", AAAI 2016. F. Wenzel et al., "How good is the Bayes
      posterior in deep neural networks really?", ICML 2020 (the temperature
      convention).
    """
    check_step_size(step_size)

    def step(key, state, batch, *, log_joint):
        return sgld_step(key, state, batch, log_joint=log_joint, step_size=step_size,
                         rmsprop_decay=rmsprop_decay, rmsprop_epsilon=rmsprop_epsilon)

    return as_algorithm(lambda params: sgld_init(params, preconditioned), step, log_joint)


@cached_builder
def build_sghmc(log_joint: LogJoint, step_size: StepSize, friction: float | Array = 0.1,
                precondition_every: int | None = None) -> Algorithm:
    """Stochastic gradient Hamiltonian Monte Carlo (Chen et al. 2014), in the SGD-with-momentum form.

    Update, per step on a minibatch, with learning rate lr = ``step_size``
    and friction alpha = ``friction``:

        v     <- (1 - alpha) v - lr G grad (U / N) + sqrt(2 alpha lr T G / N) xi
        theta <- theta + v

    with U / N the per-example loss (:meth:`~bayesjax.logjoint.LogJoint.loss`)
    and G = 1, or Wenzel et al. (2020)'s layerwise preconditioner
    (:func:`layerwise_preconditioner`, refreshed every
    ``precondition_every`` steps). In Chen et al.'s terms lr = N h^2 and
    alpha = h C for leapfrog step h, friction C and unit mass.

    Target: the tempered posterior p_T ∝ exp(log_joint) = exp(-U / T). As in
    :func:`build_sgld`, T scales only the injected noise (by sqrt(T)); the
    drift and the learning rate's meaning are the same at every T.

    Step size: a learning rate **per example** (the scale of
    ``optax.sgd(lr, momentum=1 - alpha)`` on the mean loss; Wenzel et al.'s
    ``lr``). No default. Under a steady gradient the momentum builds up to
    lr / alpha times it, so the drift moves at the SGD rate lr / alpha:
    lr = alpha x (an SGLD rate), e.g. 0.01 at friction 0.1 for SGLD's 0.1
    (``bayesjax compare``'s choice; the Fashion-MNIST presets run cyclical
    SGHMC at 0.05 with friction 0.1). Raise alpha for more damping (alpha = 1
    is SGLD's drift); lower lr if chains diverge (``post.divergences``).

    State and info: :class:`SGHMCState` (``position``, ``momentum``,
    ``count``, and with the preconditioner ``square_avg`` and
    ``preconditioner``) and :class:`SGMCMCInfo` (``log_density``,
    ``step_size``, ``is_sample``).

    Args:
      log_joint: the tempered log-joint (minibatch estimate).
      step_size: the learning rate per example lr (float, traced array or
        optax schedule) on the gradient of the per-example loss U / N.
      friction: alpha in (0, 1], one minus the momentum coefficient.
      precondition_every: steps between refreshes of Wenzel et al. (2020)'s
        layerwise preconditioner (:func:`sghmc_step`), e.g. the steps of an
        epoch; None: no preconditioner.

    Returns:
      An :class:`Algorithm` (a Markov chain) over :class:`SGHMCState` with :class:`SGMCMCInfo`.

    Example:
      >>> algo = bj.sghmc(lj, step_size=0.01, friction=0.1)
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=40, batch_size=50,
      ...               num_chains=2, burnin=20, progress=False)

    References:
      T. Chen, E. Fox and C. Guestrin, "Stochastic gradient Hamiltonian Monte
      Carlo", ICML 2014. F. Wenzel et al., "How good is the Bayes posterior in
      deep neural networks really?", ICML 2020 (App. E: the preconditioner).
    """
    check_momentum(step_size, friction, precondition_every)

    def step(key, state, batch, *, log_joint):
        return sghmc_step(key, state, batch, log_joint=log_joint, step_size=step_size, friction=friction,
                          precondition_every=precondition_every)

    return as_algorithm(lambda params: sghmc_init(params, precondition_every is not None), step, log_joint)


def check_momentum(step_size: StepSize, friction, precondition_every: int | None) -> None:
    """:func:`check_step_size`, a friction in (0, 1] and a positive ``precondition_every`` (or None)."""
    check_step_size(step_size)
    check_positive("friction", friction)
    if concrete(friction) is not None and friction > 1:
        raise ValueError(f"friction must be in (0, 1], got {friction}")
    if precondition_every is not None:
        check_int("precondition_every", precondition_every)
