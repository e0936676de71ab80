r"""Hamiltonian Monte Carlo on the full-batch tempered log-joint, and the chain it shares with NUTS.

The target is the tempered log-joint itself, ``log pi_T(theta) = log_joint(theta, D)``
evaluated on the whole data set ``D`` (temperature and tempering rule live in
the :class:`~bayesjax.logjoint.LogJoint`), so HMC and NUTS
(:mod:`bayesjax.inference.mcmc.nuts`) are exact MCMC for the tempered
posterior: no minibatch noise, no discretization bias. Full-batch HMC is the
reference posterior for Bayesian neural networks (Izmailov et al. 2021) at the
price of one pass over the data per gradient.

With momentum ``p ~ N(0, M)`` the Hamiltonian is

    H(theta, p) = -log pi_T(theta) + 1/2 p^T M^{-1} p,

and ``L`` leapfrog steps of size ``eps`` integrate Hamilton's equations::

    p     <- p + eps/2 * grad log pi_T(theta)
    theta <- theta + eps * M^{-1} p
    p     <- p + eps/2 * grad log pi_T(theta)

The end point ``(theta_L, -p_L)`` is accepted with the Metropolis probability
``min(1, exp(H(theta, p) - H(theta_L, p_L)))``, which corrects the integration
error exactly (Neal 2011). HMC draws each transition's step size uniformly from
``eps * [1 - j, 1 + j]`` (``step_size_jitter`` j, default 0.2; Neal 2011,
sec. 5.4.2.2): with a fixed ``eps * L`` the trajectory can be nearly periodic
in some direction and the chain all but stops moving there (its effective
sample size collapses; the figures are in benchmarks/README.md). A transition
whose energy error exceeds 1000 is flagged ``is_divergent``.

The integrator and the Metropolis step are blackjax's (``blackjax.mcmc.hmc``);
this module binds them to the :class:`~bayesjax.base.Algorithm` protocol and
runs Stan's window adaptation (:mod:`bayesjax.inference.mcmc.adaptation`)
*inside* ``step``, so a whole run, warm-up included, is one ``lax.scan``. The
chain's state (:class:`HMCState`), its :func:`init`, :func:`sample`, one
:func:`transition` around any blackjax kernel and :func:`as_algorithm` are
shared with NUTS, which differs only in its kernel: the file is one concept,
the HMC chain, which NUTS reuses whole.

Costs and limits: the batch must be the full data set (``bj.run(...,
batch_size=None)``), the same at every step (its order may change: the
log-joint is a sum over examples), since the log density and gradient at the
current position are carried over from the previous step. ``init`` sees no
data, so at the starting point they are evaluated in the first ``step``. Under
``jax.vmap`` over chains (as in ``bj.run``) that conditional becomes a select,
so every transition pays one extra gradient (``1 / num_integration_steps`` of
HMC's cost). The mass matrix acts on the raveled parameters, so a dense one is
``D x D``: use ``diagonal_mass_matrix=True`` for neural networks.

References:
  R. M. Neal, "MCMC using Hamiltonian dynamics", Handbook of Markov Chain
  Monte Carlo, 2011.
  P. Izmailov, S. Vikram, M. D. Hoffman and A. G. Wilson, "What are Bayesian
  neural network posteriors really like?", ICML 2021.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.base import Algorithm, cached_builder
from bayesjax.targeting import targeting
from bayesjax.checks import check_int, check_positive, concrete
from bayesjax.inference.mcmc import adaptation
from bayesjax.logjoint import LogJoint
from bayesjax.trees import cast_like, num_params, repeat_params
from bayesjax.types import Array, Batch, Params, PRNGKey

__all__ = ["HMCInfo", "HMCState", "as_algorithm", "build_hmc", "check_full_batch", "check_hyperparameters", "init",
           "sample", "step", "transition"]

# blackjax is imported on first use: it builds arrays at import, which starts JAX's backend, and that
# must wait until bayesjax.sharding.use_all_cpu_cores has split the host into devices.


class HMCState(NamedTuple):
    """State of an HMC or NUTS chain.

    Attributes:
      position: the current parameters (the chain's sample).
      logdensity: tempered log-joint at ``position``; NaN until the first step
        (``init`` sees no data).
      logdensity_grad: its gradient, a tree like ``position`` (zeros until the
        first step).
      step_size: the integrator's (nominal) step size for the next transition;
        HMC jitters it per transition.
      inverse_mass_matrix: ``[D]`` (diagonal) or ``[D, D]`` (dense) over the
        raveled parameters, used by the next transition.
      adaptation: blackjax's ``WindowAdaptationState`` while adapting (kept,
        frozen, afterwards), or ``None`` when ``num_adaptation_steps == 0``.
      step: number of transitions taken (int32).
    """

    position: Params
    logdensity: Array
    logdensity_grad: Params
    step_size: Array
    inverse_mass_matrix: Array
    adaptation: object
    step: Array


class HMCInfo(NamedTuple):
    """Diagnostics of one HMC transition.

    Attributes:
      log_density: tempered log-joint at the new position.
      acceptance_rate: Metropolis acceptance probability of the proposal.
      is_accepted: whether the proposal was accepted.
      is_divergent: whether the energy error exceeded the divergence threshold.
      step_size: the (jittered) step size this transition used.
      num_integration_steps: leapfrog steps taken.
    """

    log_density: Array
    acceptance_rate: Array
    is_accepted: Array
    is_divergent: Array
    step_size: Array
    num_integration_steps: Array


# --------------------------------------------------------------------------- #
# The chain HMC and NUTS share
# --------------------------------------------------------------------------- #
def _float_dtype(position: Params):
    dtype = jnp.result_type(*jax.tree.leaves(position))
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def check_full_batch(method: str, log_joint: LogJoint, batch: Batch) -> None:
    """Raises ValueError unless ``batch`` holds all ``log_joint.num_data`` examples.

    Args:
      method: the sampler's name for the message (``"HMC"``, ``"NUTS"``).
      log_joint: the target.
      batch: the batch a step received.
    """
    num_data = getattr(log_joint, "num_data", None)
    size = jax.tree.leaves(batch)[0].shape[0]
    if num_data is not None and size != num_data:
        raise ValueError(
            f"{method} needs the full data set as its batch: use bj.run(..., batch_size=None) "
            f"(got a batch of {size} examples, the log-joint has num_data={num_data})"
        )


def check_hyperparameters(step_size, num_adaptation_steps, target_acceptance_rate, step_size_jitter=0.0,
                          **counts) -> None:
    """Raises ValueError on a hyperparameter of HMC or NUTS out of range (traced values pass).

    Args:
      step_size: a positive scalar.
      num_adaptation_steps: an int >= 0.
      target_acceptance_rate: a scalar in (0, 1).
      step_size_jitter: a scalar in [0, 1).
      **counts: further ints >= 1 by name (``num_integration_steps``, ``max_num_doublings``).
    """
    for name, value in counts.items():
        check_int(name, value, minimum=1)
    check_int("num_adaptation_steps", num_adaptation_steps, minimum=0)
    check_positive("step_size", step_size)
    if jnp.ndim(step_size) != 0:
        raise ValueError(f"step_size must be a scalar, got shape {jnp.shape(step_size)}")
    for name, value, low_open in (("target_acceptance_rate", target_acceptance_rate, True),
                                  ("step_size_jitter", step_size_jitter, False)):
        array = concrete(value)
        if array is not None and (array.ndim != 0 or not (0.0 < array < 1.0 if low_open else 0.0 <= array < 1.0)):
            raise ValueError(f"{name} must be a scalar in {'(0, 1)' if low_open else '[0, 1)'}, got {value!r}")


def init(
    position: Params,
    step_size: float | Array,
    num_adaptation_steps: int = 0,
    diagonal_mass_matrix: bool = True,
) -> HMCState:
    """Starts an HMC or NUTS chain at ``position``.

    Args:
      position: initial parameters.
      step_size: initial integrator step size (> 0; may be traced). With
        adaptation it only seeds dual averaging.
      num_adaptation_steps: steps of window adaptation to come (0: none, and
        no adaptation state is kept).
      diagonal_mass_matrix: a ``[D]`` diagonal inverse mass matrix, else ``[D, D]``.

    Returns:
      An :class:`HMCState` with identity mass matrix; its log density is
      evaluated by the first ``step`` (NaN until then).
    """
    dtype = _float_dtype(position)
    dim = num_params(position)
    step_size = jnp.asarray(step_size, dtype)
    if diagonal_mass_matrix:
        inverse_mass_matrix = jnp.ones((dim,), dtype)
    else:
        inverse_mass_matrix = jnp.eye(dim, dtype=dtype)
    warmup = None
    if num_adaptation_steps > 0:
        warmup = adaptation.init(position, step_size, diagonal_mass_matrix)
        inverse_mass_matrix = warmup.inverse_mass_matrix.astype(dtype)
    return HMCState(
        position=position,
        logdensity=jnp.full((), jnp.nan, dtype),
        logdensity_grad=jax.tree.map(jnp.zeros_like, position),
        step_size=step_size,
        inverse_mass_matrix=inverse_mass_matrix,
        adaptation=warmup,
        step=jnp.zeros((), jnp.int32),
    )


def transition(
    key: PRNGKey,
    state: HMCState,
    logdensity_fn: Callable[[Params], Array],
    kernel: Callable,
    num_adaptation_steps: int,
    target_acceptance_rate: float,
    diagonal_mass_matrix: bool,
):
    """One blackjax transition from ``state``, then one window-adaptation update.

    Args:
      key: the kernel's PRNG key.
      state: current :class:`HMCState`.
      logdensity_fn: ``theta -> log pi_T(theta)`` on the full batch.
      kernel: ``(key, chain, logdensity_fn, step_size, inverse_mass_matrix) ->
        (chain, info)`` over blackjax's ``HMCState`` (HMC's or NUTS's kernel).
      num_adaptation_steps: window-adaptation steps (static; 0: none).
      target_acceptance_rate: dual averaging's target.
      diagonal_mass_matrix: adapt a diagonal (else dense) inverse mass matrix.

    Returns:
      ``(state, info)``, ``info`` the kernel's own.
    """
    import blackjax.mcmc.hmc  # on first use: see above

    # The log density at the start is cached in the state, except on the first
    # step: init had no data to evaluate it on.
    logdensity, logdensity_grad = jax.lax.cond(
        state.step == 0,
        lambda: cast_like(jax.value_and_grad(logdensity_fn)(state.position),
                          (state.logdensity, state.logdensity_grad)),
        lambda: (state.logdensity, state.logdensity_grad),
    )
    chain = blackjax.mcmc.hmc.HMCState(state.position, logdensity, logdensity_grad)
    chain, info = kernel(key, chain, logdensity_fn, state.step_size, state.inverse_mass_matrix)
    position, logdensity, logdensity_grad = cast_like(
        tuple(chain), (state.position, state.logdensity, state.logdensity_grad)
    )

    warmup, step_size, inverse_mass_matrix = state.adaptation, state.step_size, state.inverse_mass_matrix
    if num_adaptation_steps > 0:
        warmup, step_size, inverse_mass_matrix = adaptation.update(
            warmup, step_size, inverse_mass_matrix, state.step, position, info.acceptance_rate,
            num_adaptation_steps=num_adaptation_steps, target_acceptance_rate=target_acceptance_rate,
            diagonal_mass_matrix=diagonal_mass_matrix,
        )

    new_state = HMCState(
        position, logdensity, logdensity_grad, step_size, inverse_mass_matrix, warmup, state.step + 1
    )
    return new_state, info


def sample(state: HMCState, num_samples: int) -> Params:
    """``num_samples`` copies of the current position.

    A single state holds one draw; ``bj.run`` wraps chains in a sample buffer
    (:func:`bayesjax.buffer.with_sample_buffer`) whose ``sample`` draws from the
    visited positions.
    """
    return repeat_params(state.position, num_samples)


def as_algorithm(
    log_joint: LogJoint,
    step_fn: Callable,
    step_size: float | Array,
    num_adaptation_steps: int,
    diagonal_mass_matrix: bool,
) -> Algorithm:
    """A full-batch sampler over :class:`HMCState` as a Markov-chain :class:`Algorithm`.

    Args:
      log_joint: the target.
      step_fn: ``(key, state, batch, *, log_joint) -> (state, info)``, the
        sampler's step with its hyperparameters bound.
      step_size, num_adaptation_steps, diagonal_mass_matrix: as :func:`init`.
    """

    def init_fn(key: PRNGKey, params: Params) -> HMCState:
        del key
        return init(params, step_size, num_adaptation_steps, diagonal_mass_matrix)

    def sample_fn(key: PRNGKey, state: HMCState, num_samples: int) -> Params:
        del key
        return sample(state, num_samples)

    return targeting(log_joint, init_fn, step_fn, sample_fn, markov_chain=True)


# --------------------------------------------------------------------------- #
# HMC
# --------------------------------------------------------------------------- #
def step(
    key: PRNGKey,
    state: HMCState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    num_integration_steps: int,
    num_adaptation_steps: int = 0,
    target_acceptance_rate: float = 0.8,
    diagonal_mass_matrix: bool = True,
    step_size_jitter: float | Array = 0.2,
) -> tuple[HMCState, HMCInfo]:
    """One HMC transition (blackjax's kernel) on the full batch, then window adaptation.

    Args:
      key: PRNG key, consumed by this transition only (split for the step-size
        jitter and blackjax's kernel).
      state: current :class:`HMCState`.
      batch: the whole data set ``(x, y)``.
      log_joint: the tempered log-joint; the target is ``log_joint(theta, batch)``.
      num_integration_steps: leapfrog steps per transition (static).
      num_adaptation_steps: window-adaptation steps (static; as given to ``init``).
      target_acceptance_rate: dual averaging's target.
      diagonal_mass_matrix: adapt a diagonal (else dense) inverse mass matrix.
      step_size_jitter: j in [0, 1): the transition uses ``state.step_size * u``,
        ``u ~ Uniform(1 - j, 1 + j)``.

    Returns:
      ``(state, info)``.

    Raises:
      ValueError: at trace time, if ``batch`` is not the full data set.
    """
    import blackjax.mcmc.hmc  # on first use: see above

    check_full_batch("HMC", log_joint, batch)
    kernel = blackjax.mcmc.hmc.build_kernel()
    jitter_key, kernel_key = jax.random.split(key)
    dtype = state.step_size.dtype
    jitter = jax.random.uniform(jitter_key, (), dtype, minval=-1.0, maxval=1.0)
    step_size = state.step_size * (1 + jnp.asarray(step_size_jitter, dtype) * jitter)

    def hmc_kernel(key, chain, logdensity_fn, nominal_step_size, inverse_mass_matrix):
        del nominal_step_size  # the jittered step_size above is used instead
        return kernel(key, chain, logdensity_fn, step_size, inverse_mass_matrix, num_integration_steps)

    new_state, info = transition(
        kernel_key, state, lambda p: log_joint(p, batch), hmc_kernel,
        num_adaptation_steps, target_acceptance_rate, diagonal_mass_matrix,
    )
    return new_state, HMCInfo(
        log_density=new_state.logdensity,
        acceptance_rate=jnp.asarray(info.acceptance_rate).astype(dtype),
        is_accepted=jnp.asarray(info.is_accepted, bool),
        is_divergent=jnp.asarray(info.is_divergent, bool),
        step_size=step_size,
        num_integration_steps=jnp.asarray(num_integration_steps, jnp.int32),
    )


@cached_builder
def build_hmc(
    log_joint: LogJoint,
    step_size: float | Array = 1e-3,
    num_integration_steps: int = 10,
    num_adaptation_steps: int = 0,
    target_acceptance_rate: float = 0.8,
    diagonal_mass_matrix: bool = True,
    step_size_jitter: float | Array = 0.2,
) -> Algorithm:
    """Full-batch Hamiltonian Monte Carlo (Neal 2011) as an :class:`Algorithm`.

    Update: each step draws ``p ~ N(0, M)``, runs L = ``num_integration_steps``
    leapfrog steps of size eps on

        H(theta, p) = -log_joint(theta, D) + p^T M^{-1} p / 2,
        p <- p + eps/2 grad log_joint;  theta <- theta + eps M^{-1} p;  p <- p + eps/2 grad log_joint,

    and accepts the end point with probability ``min(1, exp(-Delta H))``.

    Target: exactly the tempered posterior p_T ∝ exp(log_joint(theta, D))
    on the whole data set (no minibatch noise, no discretization bias: the
    Metropolis step corrects it). T enters through the log-joint:
    ``[log p(D | theta) + log p(theta)] / T`` under posterior tempering, so a
    colder T sharpens the target by sqrt(T) in every direction.

    Step size: the leapfrog step eps on the N-scaled, tempered log-joint
    itself (blackjax's meaning), *not* a per-example rate: the posterior's
    width shrinks like sqrt(T / N), and so must eps. Default 1e-3; the robust
    choice is ``num_adaptation_steps`` > 0 (Stan's window adaptation of eps
    and a diagonal mass matrix to ``target_acceptance_rate``, inside the
    scan; see :mod:`bayesjax.inference.mcmc.adaptation`), with ``burnin`` at
    least as long. By hand: aim for ``post.info.acceptance_rate`` of 0.6-0.9
    and lower eps if ``info.is_divergent`` fires. The step size is jittered
    per transition (``step_size_jitter``) to break periodic trajectories.

    State and info: :class:`HMCState` (``position``, ``logdensity``,
    ``logdensity_grad``, ``step_size``, ``inverse_mass_matrix``,
    ``adaptation``, ``step``) and :class:`HMCInfo` (``log_density``,
    ``acceptance_rate``, ``is_accepted``, ``is_divergent``, ``step_size``,
    ``num_integration_steps``). Each transition costs L full-data gradients.

    Args:
      log_joint: the tempered log-joint (its temperature is the target's).
      step_size: leapfrog step size (> 0; may be traced); with adaptation the
        initial value of dual averaging.
      num_integration_steps: leapfrog steps per transition.
      num_adaptation_steps: Stan window adaptation of step size and mass matrix
        during the first steps (0: none). Pass ``burnin >= num_adaptation_steps``
        to ``bj.run`` so warm-up positions are discarded.
      target_acceptance_rate: acceptance rate that step-size adaptation targets.
      diagonal_mass_matrix: adapt a diagonal inverse mass matrix (else dense ``D x D``).
      step_size_jitter: j in [0, 1); each transition uses a step size drawn
        uniformly from ``step_size * [1 - j, 1 + j]`` (0: fixed, as blackjax's
        ``hmc``). May be traced.

    Returns:
      An :class:`Algorithm` over :class:`HMCState` with :class:`HMCInfo`. Run it
      on the full batch: ``bj.run(..., batch_size=None)``.

    Example:
      >>> algo = bj.hmc(lj, step_size=1e-2, num_integration_steps=10, num_adaptation_steps=10)
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=30, num_chains=2, burnin=10,
      ...               progress=False)
      >>> post.sample(jax.random.key(1), 10)["Dense_0"]["kernel"].shape
      (10, 64, 16)

    References:
      R. M. Neal, "MCMC using Hamiltonian dynamics", 2011. P. Izmailov et al.,
      "What are Bayesian neural network posteriors really like?", ICML 2021.
    """
    check_hyperparameters(step_size, num_adaptation_steps, target_acceptance_rate, step_size_jitter,
                          num_integration_steps=num_integration_steps)

    def step_fn(key: PRNGKey, state: HMCState, batch: Batch, *, log_joint: LogJoint) -> tuple[HMCState, HMCInfo]:
        return step(
            key, state, batch, log_joint=log_joint, num_integration_steps=num_integration_steps,
            num_adaptation_steps=num_adaptation_steps, target_acceptance_rate=target_acceptance_rate,
            diagonal_mass_matrix=diagonal_mass_matrix, step_size_jitter=step_size_jitter,
        )

    return as_algorithm(log_joint, step_fn, step_size, num_adaptation_steps, diagonal_mass_matrix)
