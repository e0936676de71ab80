"""Ensembles of any algorithm, its members vmapped inside one jit; MultiSWAG.

:func:`build` turns an :class:`~bayesjax.base.Algorithm` into one whose state
stacks M member states on a leading axis: ``init`` and ``step`` are the
member's, ``jax.vmap``-ed, so M members train as one computation, each on
its own minibatches under ``bj.run`` (:class:`~bayesjax.base.MemberBatches`).
Member m's randomness is ``fold_in(key, m)`` for every key the
ensemble receives, so a member does not depend on how many run beside it.

* Deep ensembles (Lakshminarayanan et al. 2017, "Simple and scalable
  predictive uncertainty estimation using deep ensembles"): an ensemble of
  :func:`bayesjax.map` members from independent initializations (``init``).
  With a heteroscedastic Gaussian likelihood the members predict a mean and
  a variance and the predictive is their mixture.
* MultiSWAG (Wilson & Izmailov 2020, "Bayesian deep learning and a
  probabilistic perspective of generalization"): an ensemble of SWAG members;
  the posterior is the equal-weight mixture of the members' Gaussians.
* Bootstrap (Lakshminarayanan et al. 2017 tried it; Osband et al. 2016):
  member m weights example i by a fixed random w_mi with E[w] = 1, Poisson(1)
  (the Poisson bootstrap, ~ resampling N of N with replacement) or Exp(1)
  (the Bayesian bootstrap, Rubin 1981). With a minibatch B the member's
  log-likelihood estimate is (N / |B|) sum_{i in B} w_mi log p(y_i | x_i, theta),
  unbiased for the bootstrapped full-data log-likelihood sum_i w_mi log p_i.
  The step only sees the minibatch, so example i is recognized by a 32-bit
  hash of its contents (x_i, y_i): its weight is the same in every epoch and
  batch. (Identical examples share one weight; a hash collision between
  different examples has probability ~2^-32 per pair. Inputs augmented at
  random inside the run hash differently every step, which turns the fixed
  bootstrap into a per-step, online one.)
* Anchored ensembles (Pearce et al. 2020, "Uncertainty in neural networks:
  approximately Bayesian ensembling"): member m draws an anchor
  theta_anc_m ~ p(theta) and its prior term becomes log p(theta - theta_anc_m)
  (for a Gaussian prior: regularized toward its own prior draw, not toward 0);
  without ``init`` members also start at their anchors. With
  ``target_noise = sigma`` each member also regresses on fixed perturbed
  targets y_i + sigma eps_mi (the same hash identifies i): on a linear-Gaussian
  model with noise sigma at T = 1 each member's optimum is then an exact
  posterior sample ("randomize-then-optimize"; Osband et al. 2018, Lemma 3;
  Pearce et al. 2020, Sec. 4). Without it the members' spread around the
  posterior mean is Sigma_post Sigma_prior^-1 Sigma_post, smaller than the
  posterior's.

Bootstrap, anchors and target noise re-aim the member at another log-joint
(its declared ``retarget``, see :class:`bayesjax.base.Algorithm`), so they
need a member built by a bayesjax builder whose step sees the batch only
through the log-joint.

Members whose state is a Markov chain (``bj.sgld``, ...) contribute their
current position; for several chains with sample buffers use
``bj.run(..., num_chains=M)`` instead.

``sample(key, state, n)`` is stratified over members like
:meth:`bayesjax.Posterior.sample`: draw i comes from member
``permutation(M)[i % M]``, each member's own ``sample`` supplying its share, so
``n == M`` gives each member once (a MAP member's point, a SWAG member's
Gaussian draw).

The file is one concept, the ensemble wrapper with its per-member
re-targeting (bootstrap, anchors, target noise); its builders document
their objective in full.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bayesjax.base import Algorithm, MemberBatches, cached_builder
from bayesjax.targeting import targeting
from bayesjax.checks import check_int, check_positive
from bayesjax.inference import swag
from bayesjax.inference.member_targets import (anchored_prior, bootstrap_weights, example_ids, split_data_key,
                                               target_noise_of, weighted_likelihood)
from bayesjax.likelihoods import REGRESSION
from bayesjax.logjoint import LogJoint
from bayesjax.priors import Prior
from bayesjax.types import Array, Batch, Params, PRNGKey, State

__all__ = [
    "EnsembleState",
    "BOOTSTRAPS",
    "build",
    "build_multiswag",
    "example_ids",
    "bootstrap_weights",
    "member_weights",
]

BOOTSTRAPS = ("poisson", "bayesian")


class EnsembleState(NamedTuple):
    """State of an ensemble.

    Attributes:
      members: the member states, every leaf with a leading member axis M.
      anchors: each member's prior draw (anchored ensembles), leaves
        ``[M, *leaf.shape]``; ``None`` otherwise.
      data_keys: each member's fixed key for per-example randomness (bootstrap
        weights, target noise) as raw key data ``[M, ...]`` (uint32);
        ``None`` when unused.
    """

    members: State
    anchors: Params | None
    data_keys: Array | None


def member_weights(state: "EnsembleState", batch: Batch, bootstrap: str = "poisson") -> Array:
    """Each member's bootstrap weights of the examples in ``batch``, ``[M, B]``.

    The weights the members' log-likelihoods used; a zero marks an example the
    member never saw (out of bag), e.g. for out-of-bag validation.

    Args:
      state: an :class:`EnsembleState` of a bootstrapped ensemble (no chain axis).
      batch: ``(x, y)`` examples.
      bootstrap: the ensemble's ``bootstrap`` kind (``"poisson"`` or ``"bayesian"``).
    """
    if state.data_keys is None:
        raise ValueError("this ensemble was built without bootstrap (or target noise): it has no example weights")
    ids = example_ids(batch)
    return jax.vmap(lambda k: bootstrap_weights(split_data_key(k)[1], ids, bootstrap))(state.data_keys)


# --------------------------------------------------------------------------- #
# The ensemble
# --------------------------------------------------------------------------- #
def _member_axis(mesh: Mesh) -> str:
    return "chains" if "chains" in mesh.axis_names else mesh.axis_names[0]


@cached_builder
def build(
    algorithm: Algorithm,
    num_members: int,
    init: Callable[[PRNGKey], Params] | None = None,
    bootstrap: bool | str = False,
    anchored: bool | Prior = False,
    target_noise: float | None = None,
    mesh: Mesh | None = None,
    own_data_order: bool = True,
) -> Algorithm:
    """An ensemble of ``num_members`` copies of ``algorithm``, vmapped in one jit.

    Objective: each member runs ``algorithm``'s own update on its own
    minibatches, independently: a deep ensemble (Lakshminarayanan et al.
    2017: independent initializations and independent shuffles of the data)
    is ``bj.ensemble(bj.map(lj, optimizer), M, init=...)``, the one way to
    build it; MultiSWAG (:func:`build_multiswag`) has SWAG members. Under
    ``bj.run`` member m draws its own minibatch order each epoch
    (``fold_in`` of the chain's order key by m); full-batch runs, runs
    without shuffling and streams give every member the same batches, and so
    does a step called by hand with one batch. Options re-aim member m at its
    own log-joint:

    * ``bootstrap``: example i's log-likelihood weighted by a fixed w_mi with
      E[w] = 1 (Poisson(1), or Exp(1) for the Bayesian bootstrap), so the
      member's minibatch estimate is (N / |B|) sum_B w_mi log p(y_i | x_i, theta);
    * ``anchored`` (Pearce et al. 2020): the prior term becomes
      log p(theta - theta_anc_m), theta_anc_m ~ p(theta), a regularizer toward
      the member's own prior draw;
    * ``target_noise`` sigma: regression targets y_i + sigma eps_mi;
      with ``anchored`` on a linear-Gaussian model at T = 1 each member's
      optimum is an exact posterior draw (randomize-then-optimize).

    The posterior is the equal-weight mixture of the members'. Temperature,
    step sizes and learning rates are the member algorithm's (for MAP
    members: an optax optimizer on the per-example loss U / N, see
    :func:`bayesjax.map`).

    State and info: :class:`EnsembleState` (``members``: the member states
    stacked on a leading axis M; ``anchors``; ``data_keys``); the info is the
    member algorithm's with a leading member axis.

    Randomness: member m gets ``k = fold_in(key, m)`` of every key: at ``init``,
    ``k_init, k_params, k_data = split(k, 3)`` with ``algorithm.init(k_init,
    init(k_params))`` (or ``params`` without ``init``; the anchor and the
    per-example data key come from ``k_data``); at ``step``,
    ``algorithm.step(k, state_m, batch)``; at ``sample``, draws from
    ``algorithm.sample`` with ``fold_in(draw_key, m)``.

    Args:
      algorithm: the member algorithm (``bj.map``, ``bj.swag``, any Algorithm).
      num_members: M >= 1.
      init: ``key -> params``, each member's own initialization, run inside the
        ensemble's (jitted) init. Without it members start at their anchors
        (``anchored``), or, with ``bootstrap`` or ``target_noise``, all at the
        ``params`` given to ``init``; with none of these it is required
        (members from one start differ only by their data order: refused).
      bootstrap: ``False``, ``True`` / ``"poisson"`` (Poisson(1) example
        weights) or ``"bayesian"`` (Exp(1) weights), fixed per member and example.
      anchored: ``True`` regularizes each member toward its own draw from the
        log-joint's prior (Pearce et al. 2020) instead of toward the prior's
        centre; a :class:`~bayesjax.priors.Prior` draws the anchors from it
        instead (Pearce et al.'s anchor distribution), the regularizer staying
        the log-joint's prior shifted to the anchor.
      target_noise: sigma > 0 adds fixed N(0, sigma^2) noise per member and
        example to regression targets (randomize-then-optimize).
      mesh: a :class:`jax.sharding.Mesh`; the member axis is split over its
        ``"chains"`` axis (else its first axis), which must divide M. Shard
        either the members (here) or the chains (``bj.run(mesh=...)``), not both.
      own_data_order: each member reads its own minibatches under ``bj.run``
        (declared as ``member_batches``); ``False`` shares one minibatch per
        step between the members (less gathering per step, correlated members).

    Returns:
      An :class:`Algorithm` over :class:`EnsembleState`.

    Example:
      >>> algo = bj.ensemble(bj.map(lj, optax.adam(1e-2)), 5, init=lambda k: model.init(k, x[:1]))
      >>> post = bj.run(key, algo, params, (x, y), num_steps=20, batch_size=50, progress=False)
      >>> post.sample(key, 5)["Dense_0"]["kernel"].shape   # each member once
      (5, 64, 16)

    References:
      B. Lakshminarayanan, A. Pritzel and C. Blundell, "Simple and scalable
      predictive uncertainty estimation using deep ensembles", NeurIPS 2017.
      T. Pearce, F. Leibfried and A. Brintrup, "Uncertainty in neural
      networks: approximately Bayesian ensembling", AISTATS 2020.
    """
    num_members = check_int("num_members", num_members)
    if bootstrap is True:
        bootstrap = "poisson"
    if bootstrap not in (False, None) + BOOTSTRAPS:
        raise ValueError(f"bootstrap must be False, True or one of {BOOTSTRAPS}, got {bootstrap!r}")
    if target_noise is not None:
        check_positive("target_noise", target_noise)
    if init is None and not anchored and not bootstrap and target_noise is None:
        raise ValueError(
            "bj.ensemble without init= would start every member at the same params: pass init=key -> params "
            "(a deep ensemble's independent initializations, e.g. init=lambda k: model.init(k, x[:1])), or "
            "anchored=True to start each member at its own prior draw; for Markov chains from one start use "
            "bj.run(..., num_chains=M)"
        )
    log_joint = algorithm.log_joint
    anchored = anchored if isinstance(anchored, Prior) else bool(anchored)
    rebinds = bool(bootstrap) or anchored is not False or target_noise is not None
    if rebinds and algorithm.retarget is None:
        raise ValueError(
            "bootstrap, anchored and target_noise re-bind the member's log-joint: the member must come from a "
            "bayesjax builder (bj.map, bj.swag, bj.sgld, ...), not a wrapped or hand-made Algorithm"
        )
    if target_noise is not None and log_joint.likelihood.task != REGRESSION:
        raise ValueError(f"target_noise needs a regression likelihood, got {log_joint.likelihood.name}")
    if mesh is not None and num_members % mesh.shape[_member_axis(mesh)]:
        raise ValueError(
            f"num_members={num_members} must be a multiple of the mesh's {mesh.shape[_member_axis(mesh)]} devices"
        )
    uses_data_key = bool(bootstrap) or target_noise is not None
    indices = jnp.arange(num_members)

    def constrain(tree):
        if mesh is None:
            return tree
        return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, PartitionSpec(_member_axis(mesh))))

    def init_fn(key: PRNGKey, params: Params) -> EnsembleState:
        keys = jax.vmap(lambda m: jax.random.split(jax.random.fold_in(key, m), 3))(indices)
        init_keys, params_keys, data_keys = keys[:, 0], keys[:, 1], keys[:, 2]
        anchors = None
        if anchored:
            anchor_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(data_keys)
            anchor_prior = anchored if isinstance(anchored, Prior) else log_joint.prior
            anchors = jax.lax.map(lambda k: anchor_prior.sample(k, params), anchor_keys)
        # Members are initialized one after another (lax.map, a one-off cost): vmapped, the random
        # initializers draw arrays of one more dimension, whose threefry XLA:CPU compiles far more
        # slowly (figures in benchmarks/README.md).
        if init is not None:
            member_params = jax.lax.map(init, params_keys)
        elif anchored:
            member_params = anchors
        else:
            member_params = None
        if member_params is None:
            members = jax.lax.map(lambda k: algorithm.init(k, params), init_keys)
        else:
            members = jax.lax.map(lambda args: algorithm.init(*args), (init_keys, member_params))
        data_keys = jax.random.key_data(jax.vmap(lambda k: jax.random.fold_in(k, 1))(data_keys))
        data_keys = data_keys if uses_data_key else None
        return constrain(EnsembleState(members, anchors, data_keys))

    def member_step(key, state, anchor, data_key, batch, ids, log_joint):
        if not rebinds:
            return algorithm.step(key, state, batch)
        x, y = batch
        if data_key is not None:
            noise_key, weight_key = split_data_key(data_key)
        if target_noise is not None:
            y = y + target_noise * target_noise_of(noise_key, ids, y.dtype)
        if anchored:
            log_joint = dataclasses.replace(log_joint, prior=anchored_prior(log_joint.prior, anchor))
        if bootstrap:
            weights = bootstrap_weights(weight_key, ids, bootstrap).astype(jnp.result_type(float))
            log_joint = dataclasses.replace(log_joint, likelihood=weighted_likelihood(log_joint.likelihood))
            y = (y, weights)
        return algorithm.retarget(log_joint).step(key, state, (x, y))

    def step_fn(key: PRNGKey, state: EnsembleState, batch: Batch | MemberBatches, *,
                log_joint: LogJoint | None = None):
        keys = constrain(jax.vmap(lambda m: jax.random.fold_in(key, m))(indices))
        own = isinstance(batch, MemberBatches)
        batch, batch_axis = (batch.batch, 0) if own else (batch, None)
        ids = None
        if uses_data_key:
            ids = jax.vmap(example_ids)(batch) if own else example_ids(batch)
        members, info = jax.vmap(functools.partial(member_step, log_joint=log_joint),
                                 (0, 0, 0, 0, batch_axis, batch_axis))(
            keys, state.members, state.anchors, state.data_keys, batch, ids
        )
        return constrain(EnsembleState(members, state.anchors, state.data_keys)), info

    def sample_fn(key: PRNGKey, state: EnsembleState, num_samples: int) -> Params:
        # The members are counted from the state: a run's sampling leaves diverged members out.
        members = jax.tree.leaves(state.members)[0].shape[0]
        order_key, draw_key = jax.random.split(key)
        per_member = -(-num_samples // members)
        draw_keys = jax.vmap(lambda m: jax.random.fold_in(draw_key, m))(jnp.arange(members))
        draws = jax.vmap(algorithm.sample, (0, 0, None))(draw_keys, state.members, per_member)
        draw = jnp.arange(num_samples)
        member = jax.random.permutation(order_key, members)[draw % members]
        return jax.tree.map(lambda d: d[member, draw // members], draws)

    member_batches = num_members if own_data_order else None
    if log_joint is None:
        return Algorithm(init_fn, step_fn, sample_fn, member_batches=member_batches)
    return targeting(log_joint, init_fn, step_fn, sample_fn, model_state=False,
                     recompute_statistics=algorithm.recompute_statistics, member_batches=member_batches)


@cached_builder
def build_multiswag(
    log_joint: LogJoint,
    optimizer: optax.GradientTransformation,
    num_members: int,
    init: Callable[[PRNGKey], Params] | None = None,
    start_step: int = 0,
    collect_every: int = 1,
    rank: int = 20,
    diag: bool = True,
    bootstrap: bool | str = False,
    anchored: bool | Prior = False,
    mesh: Mesh | None = None,
    own_data_order: bool = True,
) -> Algorithm:
    """MultiSWAG (Wilson & Izmailov 2020): an ensemble of :func:`bayesjax.swag` members.

    Each member runs SWAG's update (SGD steps on the per-example loss U / N,
    running moments of the collected iterates) from its own initialization
    ``init``; the posterior is the equal mixture of the members' SWAG
    Gaussians, and ``sample`` draws across members (``n == M``: one Gaussian
    draw from each). Temperature and learning rate mean what they mean for
    :func:`bayesjax.swag`; the state is an :class:`EnsembleState` of
    :class:`~bayesjax.inference.swag.SWAGState` members, the info
    :class:`~bayesjax.inference.swag.SWAGInfo` with a member axis.

    Args:
      log_joint: the tempered log-joint.
      optimizer: optax optimizer of every member, on the per-example loss U / N.
      num_members: M >= 1.
      init: ``key -> params``, each member's own initialization (see :func:`build`).
      start_step: steps before the first collection (see :func:`bayesjax.swag`).
      collect_every: collect every this many steps after ``start_step``.
      rank: K, deviation columns kept per member (0, or >= 2).
      diag: keep each member's diagonal variance.
      bootstrap: per-member example weights (see :func:`build`).
      anchored: anchor each member to a prior draw (see :func:`build`).
      mesh: split the members over a mesh's ``"chains"`` axis (see :func:`build`).
      own_data_order: each member reads its own minibatches (see :func:`build`).

    Returns:
      An :class:`Algorithm` over :class:`EnsembleState`.

    Example:
      >>> algo = bj.multiswag(lj, optax.sgd(0.02, momentum=0.9), num_members=4,
      ...                     init=lambda k: model.init(k, x[:1]), start_step=20, collect_every=4, rank=5)
      >>> post = bj.run(key, algo, params, (x, y), num_steps=40, batch_size=50, progress=False)
      >>> post.sample(key, 40)["Dense_1"]["kernel"].shape   # 10 from each member's Gaussian
      (40, 16, 10)

    References:
      A. G. Wilson and P. Izmailov, "Bayesian deep learning and a
      probabilistic perspective of generalization", NeurIPS 2020.
    """
    member = swag.build_swag(log_joint, optimizer, start_step, collect_every, rank, diag)
    return build(member, num_members, init=init, bootstrap=bootstrap, anchored=anchored, mesh=mesh,
                 own_data_order=own_data_order)
