r"""Any blackjax sampling kernel as a bayesjax Markov chain: :func:`from_blackjax`.

A blackjax ``SamplingAlgorithm`` (``blackjax.mala``, ``blackjax.hmc``,
``blackjax.nuts``, ``blackjax.sgld``, ``blackjax.sghmc``, ...) is a pair
``init(position)``, ``step(key, state, ...)`` built from a log density or a
gradient estimator. :func:`from_blackjax` builds it from a bayesjax
:class:`~bayesjax.logjoint.LogJoint` at every step, on that step's batch, and
declares the result a Markov chain, so ``bj.run`` keeps its positions after
``burnin`` every ``thin``-th step in its sample buffer. Every kernel targets
the tempered posterior ``p_T(theta | D) ∝ exp(log_joint(theta, D))``; the
``temperature`` lives in the log-joint and is never given to blackjax.

What the kernel receives is read from the names of its factory's arguments:

* **Full-batch kernels** (first argument ``logdensity_fn``: mala, hmc, nuts,
  barker, rmh, ...) get ``theta -> log_joint(theta, batch)`` on the full data
  set (``bj.run(..., batch_size=None)``). Their step sizes mean what they
  mean in blackjax and in :func:`bayesjax.hmc`: a MALA step
  ``theta + eps grad log p_T(theta) + sqrt(2 eps) xi`` is a Langevin step eps
  on the N-scaled, tempered log-joint, which is bj.sgld's learning rate
  ``lr = eps N / T``. ``init`` sees no data, so the kernel's state (its log
  density and gradient at the start) is made by the first ``step``; under
  ``jax.vmap`` over chains that conditional becomes a select, which costs one
  extra gradient per transition (for MALA, whose transition takes one
  gradient, the run costs twice as much; for HMC ``1 / num_integration_steps``).
* **SG-MCMC kernels** (first argument ``grad_estimator``,
  ``gradient_estimator`` or ``logdensity_estimator``: sgld, sghmc, sgnht,
  csgld) get estimators on each step's minibatch, and their step arguments
  (``step_size``, ...) come from the keyword arguments of
  :func:`from_blackjax`, each a number or a schedule ``count -> value``.
  Their step sizes are the house's **learning rates per example**
  (:mod:`bayesjax.inference.sgmcmc`): the kernel runs in the coordinates
  ``z = theta / c``, ``c = sqrt(T / N)``, on the same target (a constant
  linear change of variables; blackjax's temperature stays 1), where a
  gradient step meets the per-example loss ``U / N``. Then ``blackjax.sgld``
  with ``step_size=lr`` is exactly :func:`bayesjax.sgld` with learning rate
  lr::

      theta <- theta - lr grad (U / N) + sqrt(2 lr T / N) xi,

  and ``blackjax.sghmc``'s step size h meets the scale of :func:`bayesjax.sghmc`'s
  ``lr = h^2``, its ``alpha h`` the friction of an inner step. Unlike
  bj.sghmc it moves the position with the old momentum (an explicit Euler
  step, whose energy grows by about ``h^2 lambda`` a step, lambda the
  curvature of the per-example loss: keep that small) and redraws the
  momentum every ``num_integration_steps`` inner steps, at the right
  temperature (in z it is 1). One learning rate thus means the same at every
  N and T (the drift does not change with T).

The kernel's numerics, noise draws included, are blackjax's own (e.g. its
``ravel_pytree`` noise). Every kernel's state is kept in
:class:`BlackjaxState` beside the position theta, so a kernel whose state is
the raw position (blackjax's sgld and sghmc) is a chain like any other: its
burn-in and thinning are the sample buffer's. The info of a transition is the kernel's own info with every field that is
not one number per transition left out (``None``): the proposal and momentum
would store a copy of the weights per step. SG-MCMC kernels return none.

References:
  A. Cabezas, A. Corenflos, J. Lao, R. Louf et al., "BlackJAX: Composable
  Bayesian inference in JAX", 2024. M. Welling and Y. W. Teh, "Bayesian
  learning via stochastic gradient Langevin dynamics", ICML 2011.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from bayesjax.base import Algorithm, cached_builder
from bayesjax.checks import check_positive
from bayesjax.inference.mcmc.hmc import check_full_batch
from bayesjax.logjoint import LogJoint
from bayesjax.targeting import targeting
from bayesjax.trees import cast_like, repeat_params
from bayesjax.types import Array, Batch, Params, PRNGKey

__all__ = ["BlackjaxState", "build", "from_blackjax", "init", "sample", "step"]

FULL_BATCH = ("logdensity_fn",)
"""Factory arguments that make a full-batch kernel: a log density of the position alone."""
MINIBATCH = ("grad_estimator", "gradient_estimator", "logdensity_estimator")
"""Factory arguments that make an SG-MCMC kernel: estimators ``(position, minibatch) -> ...``."""


class BlackjaxState(NamedTuple):
    """State of a blackjax kernel run by :func:`from_blackjax`.

    Attributes:
      position: the current parameters theta (the chain's sample).
      kernel: blackjax's state; for SG-MCMC kernels in the coordinates
        ``z = theta / sqrt(T / N)`` (see the module docstring). For
        full-batch kernels a placeholder until the first step (``init`` sees
        no data).
      count: number of transitions taken (int32).
    """

    position: Params
    kernel: Any
    count: Array


def _kernel_arguments(kernel: Callable) -> tuple[inspect.Signature, tuple[str, ...]]:
    """The factory's signature and the target arguments it takes, refusing a factory that takes none."""
    signature = inspect.signature(kernel)
    targets = tuple(name for name in signature.parameters if name in FULL_BATCH + MINIBATCH)
    if targets != FULL_BATCH and not (targets and set(targets) <= set(MINIBATCH)):
        raise ValueError(
            f"from_blackjax needs a blackjax sampling kernel built from `logdensity_fn` (full batch: mala, hmc, "
            f"nuts, ...) or from `grad_estimator` / `logdensity_estimator` (SG-MCMC: sgld, sghmc, ...); "
            f"{_name(kernel)} takes {list(signature.parameters)}"
        )
    return signature, targets


def _name(kernel: Callable) -> str:
    return f"{getattr(kernel, '__module__', '')}.{getattr(kernel, '__qualname__', type(kernel).__name__)}"


def _scale(log_joint: LogJoint, targets: tuple[str, ...]) -> Array | float:
    """c: SG-MCMC kernels run on z = theta / c with c = sqrt(T / N); full-batch kernels on theta (c = 1)."""
    return 1.0 if targets == FULL_BATCH else jnp.sqrt(log_joint.temperature / log_joint.num_data)


def _scaled(tree, factor):
    return jax.tree.map(lambda leaf: (leaf * factor).astype(leaf.dtype), tree)


def _targets(log_joint: LogJoint, targets: tuple[str, ...], scale, batch: Batch | None) -> dict[str, Callable]:
    """What the factory's target arguments receive (``batch`` only for a full-batch kernel)."""
    if targets == FULL_BATCH:
        return {"logdensity_fn": lambda theta: log_joint(theta, batch)}

    def grad_estimator(z, minibatch):
        # grad_z log p_T(c z) = c grad log p_T(theta) = -(N / T) c grad (U / N) = -grad (U / N) / c.
        return _scaled(jax.grad(log_joint.loss)(_scaled(z, scale), minibatch), -1.0 / scale)

    def logdensity_estimator(z, minibatch):
        return log_joint(_scaled(z, scale), minibatch)

    made = {"grad_estimator": grad_estimator, "gradient_estimator": grad_estimator,
            "logdensity_estimator": logdensity_estimator}
    return {name: made[name] for name in targets}


def _placeholders(targets: tuple[str, ...]) -> dict[str, Callable]:
    """Targets that need no data, for ``init``: a NaN log density (full batch); estimators that are never called."""

    def nan_logdensity(position):
        leaves = jax.tree.leaves(position)
        return jnp.full((), jnp.nan, jnp.result_type(*leaves, float))

    def no_data(*args):
        raise TypeError("from_blackjax: this kernel's init calls its estimator, which needs a minibatch")

    return {name: nan_logdensity if name in FULL_BATCH else no_data for name in targets}


def _kernel_position(kernel_state):
    """The position inside blackjax's state: its ``position`` field, or the state itself (sgld, sghmc)."""
    return getattr(kernel_state, "position", kernel_state)


def init(key: PRNGKey, position: Params, kernel: Callable, targets: tuple[str, ...], scale,
         factory_params: dict) -> BlackjaxState:
    """Starts a chain at ``position``.

    Args:
      key: passed to blackjax's ``init`` (sgnht draws its momentum from it).
      position: initial parameters theta.
      kernel: the blackjax factory (``blackjax.mala``, ``blackjax.sgld``, ...).
      targets: the factory's target argument names (:data:`FULL_BATCH` or some of :data:`MINIBATCH`).
      scale: c, the coordinates' scale (1 for full-batch kernels).
      factory_params: the factory's other arguments.
    """
    algorithm = kernel(**_placeholders(targets), **factory_params)
    kernel_state = algorithm.init(_scaled(position, 1.0 / scale), key)
    return BlackjaxState(position, cast_like(kernel_state, kernel_state), jnp.zeros((), jnp.int32))


def step(key: PRNGKey, state: BlackjaxState, batch: Batch, *, log_joint: LogJoint, kernel: Callable,
         targets: tuple[str, ...], scale, factory_params: dict, step_params: dict):
    """One transition of the blackjax kernel on ``batch``.

    Args:
      key: PRNG key of this transition.
      state: current :class:`BlackjaxState`.
      batch: the full data set (full-batch kernels) or a minibatch.
      log_joint: the target.
      kernel, targets, scale, factory_params: as :func:`init`.
      step_params: the step's arguments of an SG-MCMC kernel (``step_size``,
        ...), numbers or schedules ``count -> value``.

    Returns:
      ``(state, info)``: the kernel's info with its non-scalar fields left
      out, or ``None`` for an SG-MCMC kernel.
    """
    if targets == FULL_BATCH:
        check_full_batch(f"the blackjax kernel {_name(kernel)}", log_joint, batch)
        algorithm = kernel(**_targets(log_joint, targets, scale, batch), **factory_params)
        init_key, key = jax.random.split(key)
        # The log density and its gradient at the start need data: made on the first step, carried after it.
        kernel_state = jax.lax.cond(state.count == 0,
                                    lambda: cast_like(algorithm.init(state.position, init_key), state.kernel),
                                    lambda: state.kernel)
        kernel_state, info = algorithm.step(key, kernel_state)
        info = _per_transition(info)
    else:
        algorithm = kernel(**_targets(log_joint, targets, scale, None), **factory_params)
        values = {name: value(state.count) if callable(value) else value for name, value in step_params.items()}
        kernel_state, info = algorithm.step(key, state.kernel, batch, **values), None
    kernel_state = cast_like(kernel_state, state.kernel)
    position = cast_like(_scaled(_kernel_position(kernel_state), scale), state.position)
    return BlackjaxState(position, kernel_state, state.count + 1), info


def _per_transition(info):
    """The kernel's info with each field that is not one number per transition (proposal, momentum) set to None."""
    if not hasattr(info, "_fields"):
        return jax.tree.map(lambda leaf: leaf if jnp.ndim(leaf) == 0 else None, info)
    return info._replace(**{name: None for name, value in zip(info._fields, info)
                            if not (isinstance(value, jax.Array) and value.ndim == 0)})


def sample(state: BlackjaxState, num_samples: int) -> Params:
    """Copies of the current position; ``bj.run`` wraps chains in a sample buffer."""
    return repeat_params(state.position, num_samples)


def _check_params(targets: tuple[str, ...], params: dict) -> None:
    """ValueError on a temperature, a target argument or a non-positive step size among ``params``."""
    if "temperature" in params:
        raise ValueError("temperature belongs to the target: build the log-joint with "
                         "bj.log_joint(..., temperature=T); from_blackjax never passes blackjax a temperature")
    if made := sorted(set(targets) & set(params)):
        raise ValueError(f"{made} are made by from_blackjax from the log-joint; do not pass them")
    for name, value in params.items():
        if name.startswith("step_size") and not callable(value):
            check_positive(name, value)


def _bind(kernel: Callable, signature: inspect.Signature, args: tuple, kwargs: dict, where: str) -> None:
    """ValueError naming the kernel and ``where``'s arguments unless ``signature`` takes ``args`` and ``kwargs``."""
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise ValueError(f"{_name(kernel)}: {error} ({where})") from None


@cached_builder
def build(log_joint: LogJoint, kernel: Callable, **kernel_params) -> Algorithm:
    """:func:`from_blackjax` for a hashable factory (the function behind ``blackjax.mala``, ...)."""
    import blackjax.base  # the caller's blackjax, already imported: the kernel came from it

    if not isinstance(log_joint, LogJoint):
        raise TypeError(f"from_blackjax needs a bj.log_joint (its N and T set the scales), got "
                        f"{type(log_joint).__name__}")
    signature, targets = _kernel_arguments(kernel)
    _check_params(targets, kernel_params)
    full_batch = targets == FULL_BATCH
    factory_params = {name: value for name, value in kernel_params.items()
                      if full_batch or name in signature.parameters}
    step_params = {name: value for name, value in kernel_params.items() if name not in factory_params}
    placeholders = _placeholders(targets)
    factory_arguments = f"the factory takes {list(signature.parameters)}"
    _bind(kernel, signature, (), {**placeholders, **factory_params}, factory_arguments)
    made = kernel(**placeholders, **factory_params)
    if not isinstance(made, blackjax.base.SamplingAlgorithm):
        raise ValueError(f"from_blackjax wraps a blackjax SamplingAlgorithm (init, step); {_name(kernel)} makes a "
                         f"{type(made).__name__}")
    step_signature = inspect.signature(made.step)
    _bind(kernel, step_signature, (None,) * (2 if full_batch else 3), step_params,
          f"{factory_arguments}, its step {list(step_signature.parameters)}")
    scale = _scale(log_joint, targets)

    def init_fn(key: PRNGKey, params: Params) -> BlackjaxState:
        return init(key, params, kernel, targets, scale, factory_params)

    def step_fn(key: PRNGKey, state: BlackjaxState, batch: Batch, *, log_joint: LogJoint):
        return step(key, state, batch, log_joint=log_joint, kernel=kernel, targets=targets, scale=scale,
                    factory_params=factory_params, step_params=step_params)

    def sample_fn(key: PRNGKey, state: BlackjaxState, num_samples: int) -> Params:
        del key
        return sample(state, num_samples)

    return targeting(log_joint, init_fn, step_fn, sample_fn, markov_chain=True)


def from_blackjax(log_joint: LogJoint, kernel: Callable, **kernel_params) -> Algorithm:
    """A blackjax sampling kernel on the tempered posterior of ``log_joint``, as a Markov-chain :class:`Algorithm`.

    Update: the kernel's own transition (blackjax's numerics and noise),
    built at every step from ``log_joint`` on that step's batch; ``bj.run``
    keeps its positions after ``burnin`` every ``thin`` steps.

    Target: every kernel samples the tempered posterior
    p_T(theta | D) ∝ exp(log_joint(theta, D)). The temperature lives in the
    log-joint and is never given to blackjax (passing ``temperature`` is an
    error).

    Step size, by the kind of kernel (read from its factory's arguments):

    * full-batch kernels (``logdensity_fn``: mala, hmc, nuts, barker, rmh,
      ...) see ``theta -> log_joint(theta, D)``, the N-scaled tempered
      log-joint on the whole data set (``bj.run(..., batch_size=None)``), so
      their step sizes mean what they mean in blackjax and in
      :func:`bayesjax.hmc`: a MALA step eps is a Langevin step eps on that
      log-joint, :func:`bayesjax.sgld`'s learning rate ``lr = eps N / T``;
    * SG-MCMC kernels (``grad_estimator``, ``gradient_estimator`` or
      ``logdensity_estimator``: sgld, sghmc, sgnht, csgld) see estimators on
      each minibatch and run in the coordinates ``z = theta / sqrt(T / N)``,
      where a gradient step meets the per-example loss U / N: their
      ``step_size`` is the house's **learning rate per example**, so
      ``blackjax.sgld`` with ``step_size=lr`` is exactly ``bj.sgld(lj, lr)``,

          theta <- theta - lr grad (U / N) + sqrt(2 lr T / N) xi.

    State and info: :class:`BlackjaxState` (``position``; ``kernel``:
    blackjax's state; ``count``); the info is the kernel's own, fields that
    are not one number per transition left out (SG-MCMC kernels have none).
    The module docstring has the details (sghmc's scales, costs).

    Args:
      log_joint: the tempered log-joint (:func:`bayesjax.log_joint`).
      kernel: a blackjax factory that makes a ``SamplingAlgorithm`` from a
        log density (``blackjax.mala``, ``blackjax.hmc``, ``blackjax.nuts``,
        ...: full batch) or from gradient estimators (``blackjax.sgld``,
        ``blackjax.sghmc``, ``blackjax.sgnht``, ``blackjax.csgld``: SG-MCMC),
        or any function whose arguments are named as theirs.
      **kernel_params: the factory's other arguments (``step_size``,
        ``inverse_mass_matrix``, ``num_integration_steps``, ``alpha``, ...)
        and, for SG-MCMC kernels, the step's (``step_size``: a number or a
        schedule ``count -> step size``, such as an optax schedule). Which
        scale a step size meets is in the module docstring: full-batch
        kernels as in blackjax (on the N-scaled tempered log-joint);
        SG-MCMC kernels per example, so ``blackjax.sgld``'s ``step_size`` is
        :func:`bayesjax.sgld`'s learning rate. Equal builds from hashable values
        (Python numbers, functions) are one object and share one compiled
        program; a build with an array (an ``inverse_mass_matrix``) is new
        each call.

    Returns:
      An :class:`Algorithm` over :class:`BlackjaxState` that declares itself
      a Markov chain. Run full-batch kernels with ``bj.run(...,
      batch_size=None)``.

    Raises:
      TypeError: ``log_joint`` is not a :class:`~bayesjax.logjoint.LogJoint`.
      ValueError: before anything is traced, for a factory that takes neither
        a log density nor an estimator or makes no ``SamplingAlgorithm``, an
        argument it does not take or one it needs but lacks, a
        ``temperature`` (it belongs to the log-joint), or a non-positive step
        size.

    Example:
      >>> import blackjax
      >>> algo = bj.from_blackjax(lj, blackjax.sgld, step_size=0.1)   # bj.sgld's learning rate
      >>> post = bj.run(key, algo, params_map, (x, y), num_steps=40, batch_size=50, num_chains=2,
      ...               burnin=20, thin=5, progress=False)
      >>> post.state.num_collected.tolist()   # steps 25, 30, 35, 40 of each chain
      [4, 4]
      >>> mala = bj.from_blackjax(lj, blackjax.mala, step_size=1e-4)   # a Langevin step on the full log-joint
      >>> post = bj.run(key, mala, params_map, (x, y), num_steps=20, burnin=10, progress=False)
      >>> post.sample(key, 3)["Dense_0"]["kernel"].shape
      (3, 64, 16)

    References:
      A. Cabezas, A. Corenflos, J. Lao, R. Louf et al., "BlackJAX:
      Composable Bayesian inference in JAX", 2024.
    """
    return build(log_joint, getattr(kernel, "differentiable", kernel), **kernel_params)
