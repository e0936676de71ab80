r"""Hamiltonian Monte Carlo and the No-U-Turn Sampler on the full-batch tempered log-joint.

The target is the tempered log-joint itself, ``log pi_T(theta) = log_joint(theta, D)``
evaluated on the whole data set ``D`` (temperature and tempering rule live in
the :class:`~bayesjax.logjoint.LogJoint`), so both samplers are exact MCMC for
the tempered posterior: no minibatch noise, no discretization bias. Full-batch
HMC is the reference posterior for Bayesian neural networks (Izmailov et al.
2021) at the price of one pass over the data per gradient.

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
in some direction and the chain all but stops moving there (on a 3-D Gaussian
posterior, un-jittered HMC with L = 10 gave an ESS as low as 4 of 8,000 draws
over 20 seeds; jittered, never below 1,600). NUTS (Hoffman & Gelman 2014)
removes the choice of ``L``: it doubles the trajectory forwards or backwards in time until it makes
a U-turn (or reaches ``2^max_num_doublings`` steps) and samples the next state
from the trajectory (multinomially, as in Stan and blackjax). A transition
whose energy error exceeds 1000 is flagged ``is_divergent``.

The integrators, the Metropolis step and the NUTS trajectory are blackjax's
(``blackjax.mcmc.hmc``, ``blackjax.mcmc.nuts``); this module only binds them
to the :class:`~bayesjax.base.Algorithm` protocol and adds Stan's window
adaptation *inside* ``step``, so a whole run, warm-up included, is one
``lax.scan``.

Window adaptation: during the first ``num_adaptation_steps`` steps the step
size is tuned by dual averaging towards ``target_acceptance_rate`` and the
(diagonal or dense) inverse mass matrix is estimated from the positions of
Stan's doubling slow windows (blackjax's ``window_adaptation`` schedule and
updates). After the last adaptation step both are fixed to their final values.
The final step size is dual averaging's averaged iterate, as in Stan and
blackjax, so acceptance afterwards usually exceeds the target: 0.90-0.94 for
0.8 on the 3-d linear regression of the tests, where blackjax's own
``window_adaptation(...).run`` ends at 0.92-0.95.
Positions visited while adapting are not draws from a fixed Markov kernel:
discard them with ``bj.run(..., burnin=num_adaptation_steps)`` (or more).
Every chain adapts on its own.

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
  M. D. Hoffman and A. Gelman, "The No-U-Turn Sampler: adaptively setting
  path lengths in Hamiltonian Monte Carlo", JMLR 15, 2014.
  P. Izmailov, S. Vikram, M. D. Hoffman and A. G. Wilson, "What are Bayesian
  neural network posteriors really like?", ICML 2021.
"""
from __future__ import annotations

import types
import warnings
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax._checks import check_int, check_positive, concrete
from bayesjax.base import Algorithm, bind_log_joint, num_params, repeat_params
from bayesjax.logjoint import LogJoint
from bayesjax.types import Array, Batch, Params, PRNGKey

__all__ = [
    "HMCInfo",
    "HMCState",
    "NUTSInfo",
    "build_hmc",
    "build_nuts",
    "init",
    "nuts_step",
    "sample",
    "step",
]


def _blackjax():
    """blackjax's modules, imported on first use.

    Importing blackjax starts JAX's backend (it builds arrays at import), which
    must wait until :func:`bayesjax.sharding.use_all_cpu_cores` has split the
    host into devices; so ``import bayesjax`` does not import it.
    """
    from blackjax.adaptation import window_adaptation
    from blackjax.mcmc import hmc, nuts

    return types.SimpleNamespace(window_adaptation=window_adaptation, hmc=hmc, nuts=nuts)


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


class NUTSInfo(NamedTuple):
    """Diagnostics of one NUTS transition.

    Attributes:
      log_density: tempered log-joint at the new position.
      acceptance_rate: mean Metropolis acceptance statistic over the trajectory
        (what step-size adaptation targets).
      is_divergent: whether the trajectory hit an energy error above threshold.
      is_turning: whether the trajectory stopped on a U-turn.
      step_size: the step size this transition used.
      num_integration_steps: leapfrog steps taken.
      num_trajectory_expansions: doublings of the trajectory (tree depth).
    """

    log_density: Array
    acceptance_rate: Array
    is_divergent: Array
    is_turning: Array
    step_size: Array
    num_integration_steps: Array
    num_trajectory_expansions: Array


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _float_dtype(position: Params):
    dtype = jnp.result_type(*jax.tree.leaves(position))
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def _cast_like(tree, like):
    """Casts ``tree``'s leaves to ``like``'s dtypes (strongly typed), so a state's type is stable."""
    return jax.tree.map(lambda leaf, ref: jnp.asarray(leaf).astype(jnp.result_type(ref)), tree, like)


def _strong(tree):
    return jax.tree.map(lambda leaf: jnp.asarray(leaf).astype(jnp.result_type(leaf)), tree)


def _window_adaptation(diagonal_mass_matrix: bool, target_acceptance_rate: float):
    """blackjax's Stan warm-up ``(init, update, final)`` (``window_adaptation.base``)."""
    with warnings.catch_warnings():
        # blackjax 1.7 marks ``base`` deprecated in favour of its whole-loop
        # ``window_adaptation``, which cannot run inside one step; ``base`` is the
        # released per-step API.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _blackjax().window_adaptation.base(diagonal_mass_matrix, target_acceptance_rate)


def _check_full_batch(method: str, log_joint: LogJoint, batch: Batch) -> None:
    num_data = getattr(log_joint, "num_data", None)
    size = jax.tree.leaves(batch)[0].shape[0]
    if num_data is not None and size != num_data:
        raise ValueError(
            f"{method} needs the full data set as its batch: use bj.run(..., batch_size=None) "
            f"(got a batch of {size} examples, the log-joint has num_data={num_data})"
        )


def _check_hyperparameters(step_size, num_adaptation_steps, target_acceptance_rate, step_size_jitter=0.0,
                           **counts) -> None:
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


def _transition(
    key: PRNGKey,
    state: HMCState,
    logdensity_fn: Callable[[Params], Array],
    kernel: Callable,
    num_adaptation_steps: int,
    target_acceptance_rate: float,
    diagonal_mass_matrix: bool,
):
    """One blackjax transition from ``state``, then one adaptation update."""
    # The log density at the start is cached in the state, except on the first
    # step: init had no data to evaluate it on.
    logdensity, logdensity_grad = jax.lax.cond(
        state.step == 0,
        lambda: _cast_like(jax.value_and_grad(logdensity_fn)(state.position),
                           (state.logdensity, state.logdensity_grad)),
        lambda: (state.logdensity, state.logdensity_grad),
    )
    chain = _blackjax().hmc.HMCState(state.position, logdensity, logdensity_grad)
    chain, info = kernel(key, chain, logdensity_fn, state.step_size, state.inverse_mass_matrix)
    position, logdensity, logdensity_grad = _cast_like(
        tuple(chain), (state.position, state.logdensity, state.logdensity_grad)
    )

    adaptation, step_size, inverse_mass_matrix = state.adaptation, state.step_size, state.inverse_mass_matrix
    if num_adaptation_steps > 0:
        _, update, final = _window_adaptation(diagonal_mass_matrix, target_acceptance_rate)
        schedule = _blackjax().window_adaptation.build_schedule(num_adaptation_steps)
        stage, is_window_end = schedule[jnp.minimum(state.step, num_adaptation_steps - 1)]
        current = (state.adaptation, state.step_size, state.inverse_mass_matrix)

        def adapt():
            new = _cast_like(
                update(state.adaptation, (stage, is_window_end.astype(bool)), position, info.acceptance_rate),
                state.adaptation,
            )
            last = state.step == num_adaptation_steps - 1
            final_step_size, final_imm = final(new)
            return _cast_like(
                (new, jnp.where(last, final_step_size, new.step_size),
                 jnp.where(last, final_imm, new.inverse_mass_matrix)),
                current,
            )

        adaptation, step_size, inverse_mass_matrix = jax.lax.cond(
            state.step < num_adaptation_steps, adapt, lambda: current
        )

    new_state = HMCState(
        position, logdensity, logdensity_grad, step_size, inverse_mass_matrix, adaptation, state.step + 1
    )
    return new_state, info


# --------------------------------------------------------------------------- #
# Low-level functions
# --------------------------------------------------------------------------- #
def init(
    position: Params,
    step_size: float | Array,
    num_adaptation_steps: int = 0,
    diagonal_mass_matrix: bool = True,
) -> HMCState:
    """Starts an HMC or NUTS chain at ``position`` (shared by both samplers).

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
    adaptation = None
    if num_adaptation_steps > 0:
        adaptation_init, _, _ = _window_adaptation(diagonal_mass_matrix, 0.8)  # target unused by init
        adaptation = _strong(adaptation_init(position, step_size))
        inverse_mass_matrix = adaptation.inverse_mass_matrix.astype(dtype)
    return HMCState(
        position=position,
        logdensity=jnp.full((), jnp.nan, dtype),
        logdensity_grad=jax.tree.map(jnp.zeros_like, position),
        step_size=step_size,
        inverse_mass_matrix=inverse_mass_matrix,
        adaptation=adaptation,
        step=jnp.zeros((), jnp.int32),
    )


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
    _check_full_batch("HMC", log_joint, batch)
    kernel = _blackjax().hmc.build_kernel()
    jitter_key, kernel_key = jax.random.split(key)
    dtype = state.step_size.dtype
    jitter = jax.random.uniform(jitter_key, (), dtype, minval=-1.0, maxval=1.0)
    step_size = state.step_size * (1 + jnp.asarray(step_size_jitter, dtype) * jitter)

    def hmc_kernel(key, chain, logdensity_fn, nominal_step_size, inverse_mass_matrix):
        del nominal_step_size  # the jittered step_size above is used instead
        return kernel(key, chain, logdensity_fn, step_size, inverse_mass_matrix, num_integration_steps)

    new_state, info = _transition(
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


def nuts_step(
    key: PRNGKey,
    state: HMCState,
    batch: Batch,
    *,
    log_joint: LogJoint,
    max_num_doublings: int = 10,
    num_adaptation_steps: int = 0,
    target_acceptance_rate: float = 0.8,
    diagonal_mass_matrix: bool = True,
) -> tuple[HMCState, NUTSInfo]:
    """One NUTS transition (blackjax's iterative NUTS) on the full batch, then window adaptation.

    Args:
      key: PRNG key, consumed by this transition only.
      state: current :class:`HMCState` (from :func:`init`).
      batch: the whole data set ``(x, y)``.
      log_joint: the tempered log-joint; the target is ``log_joint(theta, batch)``.
      max_num_doublings: cap on trajectory doublings (at most ``2^k`` leapfrog steps; static).
      num_adaptation_steps: window-adaptation steps (static; as given to ``init``).
      target_acceptance_rate: dual averaging's target.
      diagonal_mass_matrix: adapt a diagonal (else dense) inverse mass matrix.

    Returns:
      ``(state, info)``.

    Raises:
      ValueError: at trace time, if ``batch`` is not the full data set.
    """
    _check_full_batch("NUTS", log_joint, batch)
    kernel = _blackjax().nuts.build_kernel()

    def nuts_kernel(key, chain, logdensity_fn, step_size, inverse_mass_matrix):
        return kernel(key, chain, logdensity_fn, step_size, inverse_mass_matrix, max_num_doublings)

    new_state, info = _transition(
        key, state, lambda p: log_joint(p, batch), nuts_kernel,
        num_adaptation_steps, target_acceptance_rate, diagonal_mass_matrix,
    )
    dtype = state.step_size.dtype
    return new_state, NUTSInfo(
        log_density=new_state.logdensity,
        acceptance_rate=jnp.asarray(info.acceptance_rate).astype(dtype),
        is_divergent=jnp.asarray(info.is_divergent, bool),
        is_turning=jnp.asarray(info.is_turning, bool),
        step_size=state.step_size,
        num_integration_steps=jnp.asarray(info.num_integration_steps).astype(jnp.int32),
        num_trajectory_expansions=jnp.asarray(info.num_trajectory_expansions).astype(jnp.int32),
    )


def sample(state: HMCState, num_samples: int) -> Params:
    """``num_samples`` copies of the current position.

    A single state holds one draw; ``bj.run`` wraps chains in a sample buffer
    (:func:`bayesjax.base.with_sample_buffer`) whose ``sample`` draws from the
    visited positions.
    """
    return repeat_params(state.position, num_samples)


# --------------------------------------------------------------------------- #
# Builders
# --------------------------------------------------------------------------- #
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

    Each step draws ``p ~ N(0, M)``, runs ``num_integration_steps`` leapfrog
    steps on ``H(theta, p) = -log_joint(theta, D) + p^T M^{-1} p / 2`` and
    accepts the end point with probability ``min(1, exp(-Delta H))``; the
    chain's stationary law is the tempered posterior of ``log_joint``. The
    step size is jittered per transition to break periodic trajectories. See
    the module docstring for the equations and window adaptation.

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
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> import bayesjax as bj
      >>> x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
      >>> y = x @ np.array([1.0, -2.0, 0.5], np.float32)
      >>> lj = bj.log_joint(lambda p, x: x @ p["w"][:, None], bj.priors.gaussian(1.0),
      ...                   bj.likelihoods.gaussian(0.5), num_data=50)
      >>> algo = bj.hmc(lj, step_size=1e-2, num_integration_steps=10, num_adaptation_steps=200)
      >>> post = bj.run(jax.random.key(0), algo, {"w": jnp.zeros(3)}, (x, y), num_steps=700,
      ...               num_chains=4, burnin=200, progress=False)
      >>> samples = post.sample(jax.random.key(1), 100)   # samples["w"].shape == (100, 3)

    References:
      R. M. Neal, "MCMC using Hamiltonian dynamics", 2011. P. Izmailov et al.,
      "What are Bayesian neural network posteriors really like?", ICML 2021.
    """
    _check_hyperparameters(step_size, num_adaptation_steps, target_acceptance_rate, step_size_jitter,
                           num_integration_steps=num_integration_steps)

    def init_fn(key: PRNGKey, params: Params) -> HMCState:
        del key
        return init(params, step_size, num_adaptation_steps, diagonal_mass_matrix)

    def step_fn(key: PRNGKey, state: HMCState, batch: Batch, *, log_joint: LogJoint) -> tuple[HMCState, HMCInfo]:
        return step(
            key, state, batch, log_joint=log_joint, num_integration_steps=num_integration_steps,
            num_adaptation_steps=num_adaptation_steps, target_acceptance_rate=target_acceptance_rate,
            diagonal_mass_matrix=diagonal_mass_matrix, step_size_jitter=step_size_jitter,
        )

    def sample_fn(key: PRNGKey, state: HMCState, num_samples: int) -> Params:
        del key
        return sample(state, num_samples)

    return Algorithm(init_fn, bind_log_joint(step_fn, log_joint), sample_fn)


def build_nuts(
    log_joint: LogJoint,
    step_size: float | Array = 1e-3,
    max_num_doublings: int = 10,
    num_adaptation_steps: int = 0,
    target_acceptance_rate: float = 0.8,
    diagonal_mass_matrix: bool = True,
) -> Algorithm:
    """Full-batch No-U-Turn Sampler (Hoffman & Gelman 2014) as an :class:`Algorithm`.

    HMC whose trajectory length is chosen per transition: the leapfrog
    trajectory is doubled in a random direction until its ends make a U-turn
    (or after ``max_num_doublings`` doublings) and the next state is drawn
    from it with multinomial weights ``exp(-H)``. See the module docstring.

    Args:
      log_joint: the tempered log-joint (its temperature is the target's).
      step_size: leapfrog step size (> 0; may be traced); with adaptation the
        initial value of dual averaging.
      max_num_doublings: at most ``2^max_num_doublings`` leapfrog steps per transition.
      num_adaptation_steps: Stan window adaptation of step size and mass matrix
        during the first steps (0: none). Pass ``burnin >= num_adaptation_steps``
        to ``bj.run`` so warm-up positions are discarded.
      target_acceptance_rate: acceptance statistic that step-size adaptation targets.
      diagonal_mass_matrix: adapt a diagonal inverse mass matrix (else dense ``D x D``).

    Returns:
      An :class:`Algorithm` over :class:`HMCState` with :class:`NUTSInfo`. Run it
      on the full batch: ``bj.run(..., batch_size=None)``.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> import bayesjax as bj
      >>> x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
      >>> y = x @ np.array([1.0, -2.0, 0.5], np.float32)
      >>> lj = bj.log_joint(lambda p, x: x @ p["w"][:, None], bj.priors.gaussian(1.0),
      ...                   bj.likelihoods.gaussian(0.5), num_data=50, temperature=0.1)
      >>> post = bj.run(jax.random.key(0), bj.nuts(lj, num_adaptation_steps=300), {"w": jnp.zeros(3)},
      ...               (x, y), num_steps=800, num_chains=4, burnin=300, progress=False)
      >>> post.info.num_integration_steps.shape   # (800, 4): leapfrog steps per transition
      (800, 4)

    References:
      M. D. Hoffman and A. Gelman, "The No-U-Turn Sampler", JMLR 2014.
      P. Izmailov et al., "What are Bayesian neural network posteriors really like?", ICML 2021.
    """
    _check_hyperparameters(step_size, num_adaptation_steps, target_acceptance_rate,
                           max_num_doublings=max_num_doublings)

    def init_fn(key: PRNGKey, params: Params) -> HMCState:
        del key
        return init(params, step_size, num_adaptation_steps, diagonal_mass_matrix)

    def step_fn(key: PRNGKey, state: HMCState, batch: Batch, *, log_joint: LogJoint) -> tuple[HMCState, NUTSInfo]:
        return nuts_step(
            key, state, batch, log_joint=log_joint, max_num_doublings=max_num_doublings,
            num_adaptation_steps=num_adaptation_steps, target_acceptance_rate=target_acceptance_rate,
            diagonal_mass_matrix=diagonal_mass_matrix,
        )

    def sample_fn(key: PRNGKey, state: HMCState, num_samples: int) -> Params:
        del key
        return sample(state, num_samples)

    return Algorithm(init_fn, bind_log_joint(step_fn, log_joint), sample_fn)
