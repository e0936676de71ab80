"""The one inference protocol: the :class:`Algorithm` type and what it declares.

Every inference method is an :class:`Algorithm`: three pure functions, in the
spirit of optax's ``GradientTransformation`` and blackjax's
``SamplingAlgorithm``::

    state = algorithm.init(key, params)
    state, info = algorithm.step(key, state, batch)
    samples = algorithm.sample(key, state, num_samples)  # leaves gain axis S

Two kinds of state exist:

* A Markov chain's state has a ``position`` field (blackjax's convention).
  Its samples are the positions it visits; :func:`bayesjax.buffer.with_sample_buffer`
  collects them into a fixed-size buffer kept in the state, so a whole run
  stays one ``lax.scan``.
* Any other state is an approximate posterior (MAP point mass, variational
  Gaussian, Laplace, SWAG) whose ``sample`` draws from its own distribution.

What a driver or a wrapper must know about an algorithm is a declared,
defaulted field of the type, never an attribute set on a function.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable, NamedTuple

from bayesjax.types import Batch, Info, Params, PRNGKey, State

if TYPE_CHECKING:
    from bayesjax.logjoint import LogJoint


class Algorithm(NamedTuple):
    """An inference method as three pure functions and what it declares about itself.

    Attributes:
      init: ``(key, params) -> state``.
      step: ``(key, state, batch) -> (state, info)``; one update on a batch.
      sample: ``(key, state, num_samples) -> params`` whose leaves gain a
        leading axis of size ``num_samples``.
      log_joint: the :class:`~bayesjax.logjoint.LogJoint` it targets, or
        ``None`` for a hand-made algorithm. ``bj.run`` checks data against
        its model and likelihood before anything compiles.
      retarget: ``log_joint -> Algorithm``: the same method with the same
        hyperparameters aimed at another log-joint (traced parts allowed), or
        ``None``. Ensembles use it for bootstrap weights and anchored priors.
      num_chains: set by :func:`bayesjax.chains.vmap_chains`: the chain axis
        its state already carries; ``None`` for one chain.
      markov_chain: whether the state is a Markov chain whose visited
        positions are its samples; ``None`` infers it from the state (a
        ``position`` field).
      recompute_statistics: its samples are weights no step visited (SWA,
        SWAG, VI), so a model's BatchNorm statistics are recomputed for
        each sample on training inputs (:func:`bayesjax.recompute_statistics`;
        ``bj.run`` keeps a subset of the inputs in the posterior for it).
      member_batches: M for an ensemble whose members each read their own
        minibatches (their own data order): ``bj.run`` then hands ``step`` a
        :class:`MemberBatches` whose leaves have a leading axis M. A step
        given a plain batch shares it between the members. ``None``: one
        batch per step.
    """

    init: Callable[[PRNGKey, Params], State]
    step: Callable[[PRNGKey, State, Batch], tuple[State, Info]]
    sample: Callable[[PRNGKey, State, int], Params]
    log_joint: LogJoint | None = None
    retarget: Callable[[LogJoint], Algorithm] | None = None
    num_chains: int | None = None
    markov_chain: bool | None = None
    recompute_statistics: bool = False
    member_batches: int | None = None


class MemberBatches(NamedTuple):
    """One minibatch per ensemble member: ``batch``'s leaves have a leading member axis.

    The driver's wrapper for an algorithm that declares
    :attr:`Algorithm.member_batches`, so its ``step`` tells such a batch from a
    shared one without guessing from shapes.
    """

    batch: Batch


def is_markov_chain(algorithm: Algorithm, state: State) -> bool:
    """Whether ``algorithm`` runs a Markov chain: as declared, else whether ``state`` has a ``position``."""
    if algorithm.markov_chain is not None:
        return algorithm.markov_chain
    return hasattr(state, "position")


def cached_builder(build: Callable[..., Algorithm]) -> Callable[..., Algorithm]:
    """Makes equal builds one object: ``build(*args)`` twice returns the same :class:`Algorithm`.

    ``bj.run`` and ``Posterior.sample`` are jitted with the algorithm as a
    static argument, so a sampler rebuilt with the same log-joint and
    hyperparameters (a loop over seeds, a notebook cell run twice) reuses
    the compiled program. Calls with an unhashable argument (an array, a
    list) build a new algorithm each time; pass such hyperparameters as
    Python scalars or tuples to share compiles.
    """
    cached = functools.lru_cache(maxsize=256)(build)

    @functools.wraps(build)
    def builder(*args, **kwargs) -> Algorithm:
        try:
            hash((args, tuple(sorted(kwargs.items()))))
        except TypeError:
            return build(*args, **kwargs)
        return cached(*args, **kwargs)

    return builder
