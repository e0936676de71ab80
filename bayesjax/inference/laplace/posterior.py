"""The Laplace posterior as data: a Gaussian at the MAP with a structured precision.

For a tempered log-joint (``bj.log_joint``) with likelihood curvature ``K``
(the GGN or empirical Fisher of ``sum_i log p(y_i | x_i, theta)``, estimated
from ``m`` of the ``N`` examples as ``(N / m) K_seen``) and a Gaussian prior
of precision ``Delta`` (per weight), the posterior precision is the negative
Hessian of the tempered log-joint,

    P = c_lik K + c_prior Delta,

with the factors of the log-joint's tempering rule
(:attr:`~bayesjax.logjoint.LogJoint.likelihood_weight` ``c_lik = 1 / T`` and
:attr:`~bayesjax.logjoint.LogJoint.prior_weight` ``c_prior``):

    tempering="posterior":   P = (K + Delta) / T
    tempering="likelihood":  P = K / T + Delta

and ``q(theta) = N(theta_MAP, P^{-1})`` on the Bayesian subset of the weights
(the rest stay at the MAP). :class:`PosteriorData` holds the pieces; the
functions of them live in :mod:`.factorization` (the structured algebra of
``P``), :mod:`.sampling`, :mod:`.glm` and :mod:`.marglik`, and
:class:`~.approximation.LaplacePosterior` offers them as methods.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax.checks import check_positive, concrete
from bayesjax.inference.laplace import subsets
from bayesjax.inference.laplace.curvature import Curvature
from bayesjax.logjoint import LogJoint
from bayesjax.trees import num_params
from bayesjax.types import Array, Params

DATA_FIELDS = ("mean", "curvature", "prior_precision", "likelihood_weight", "prior_weight", "num_data", "num_seen",
               "log_likelihood_sum", "noise_scale", "factor")
META_FIELDS = ("log_joint_key", "hessian", "curvature_type", "subset", "chunk_size")


class LogJointKey:
    """A log-joint as a static jit-cache key: equal when ``apply``, ``prior`` and ``likelihood`` are.

    Temperature, tempering and ``num_data`` enter as data (the leaves
    ``likelihood_weight``, ``prior_weight`` and ``num_data`` of
    :class:`PosteriorData`), so a sweep over temperatures with one prior and
    likelihood compiles once. Traced code reads only those three parts from
    it; jitted functions return arrays, never posteriors, so a posterior's
    ``log_joint`` is always its own.
    """

    __slots__ = ("log_joint",)

    def __init__(self, log_joint: LogJoint):
        self.log_joint = log_joint

    def _parts(self):
        lj = self.log_joint
        return (lj.apply, lj.prior, lj.likelihood)

    def __hash__(self) -> int:
        return hash(self._parts())

    def __eq__(self, other) -> bool:
        return isinstance(other, LogJointKey) and self._parts() == other._parts()


@dataclasses.dataclass(frozen=True)
class PosteriorData:
    """A Laplace approximation ``N(mean, P^{-1})``, as data (see the module docstring).

    A pytree (registered with its subclass
    :class:`~.approximation.LaplacePosterior`, the type every builder returns):
    its arrays are leaves, its configuration is static, so it passes through
    ``jax.jit``.

    Attributes:
      mean: the MAP, all parameters (the non-Bayesian ones stay there).
      curvature: the likelihood curvature sum over the examples seen
        (:class:`~.curvature.DiagCurvature`, ``FullCurvature`` or ``KronCurvature``).
      prior_precision: per-leaf prior precision of the Bayesian subset (each
        leaf broadcastable to its parameter; a scalar per leaf for KFAC).
      likelihood_weight: ``c_lik``, the factor on the log-likelihood in the
        tempered log-joint (``LogJoint.likelihood_weight``, ``1 / T``).
      prior_weight: ``c_prior``, the factor on the log-prior
        (``LogJoint.prior_weight``: ``1 / T`` or 1).
      num_data: N, the log-joint's data set size.
      num_seen: m, the number of examples the curvature was summed over.
      log_likelihood_sum: ``sum_i log p(y_i | x_i, mean)`` over those m examples.
      noise_scale: factor on the curvature after noise tuning (Gaussian
        likelihood: ``sigma_fit^2 / sigma^2``), else 1.
      factor: cached factorization (full: Cholesky of P; kfac: eigendecompositions).
      log_joint_key: the log-joint, as a static :class:`LogJointKey` (read ``log_joint``).
      hessian: ``"full"``, ``"diag"`` or ``"kfac"`` (static).
      curvature_type: ``"ggn"`` or ``"ef"`` (static).
      subset: top-level names of the Bayesian parameters, or ``None`` for all (static).
      chunk_size: examples per chunk in functional-covariance passes (static; ``None``: automatic).
    """

    mean: Params
    curvature: Curvature
    prior_precision: Params
    likelihood_weight: Array
    prior_weight: Array
    num_data: Array
    num_seen: Array
    log_likelihood_sum: Array
    noise_scale: Array
    factor: Any
    log_joint_key: LogJointKey
    hessian: str
    curvature_type: str
    subset: tuple[str, ...] | None
    chunk_size: int | None = None

    @property
    def log_joint(self) -> LogJoint:
        """The target: ``apply``, ``prior``, ``likelihood``, ``tempering`` (the weights and N are leaves)."""
        return self.log_joint_key.log_joint

    @property
    def subset_mean(self) -> Params:
        """The MAP of the Bayesian parameters."""
        return subsets.select(self.mean, self.subset)

    @property
    def num_params(self) -> int:
        """Number of Bayesian parameters D."""
        return num_params(self.subset_mean)

    @property
    def log_likelihood(self) -> Array:
        """``(N / m) sum_i log p(y_i | x_i, mean)``: the full-data log-likelihood estimate (untempered)."""
        return self.num_data / self.num_seen * self.log_likelihood_sum


def register(cls: type) -> type:
    """Registers ``cls`` (:class:`PosteriorData` or a subclass) as a pytree over its data fields."""
    jax.tree_util.register_dataclass(cls, data_fields=list(DATA_FIELDS), meta_fields=list(META_FIELDS))
    return cls


register(PosteriorData)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _precision_of_prior(prior, treedef, shapes: tuple) -> Params:
    """``1 / stddev^2`` from the prior, given only shapes: concrete even when the weights are traced."""
    return jax.tree.map(lambda s: 1.0 / jnp.square(s), prior.stddev(jax.tree.unflatten(treedef, shapes)))


def normalize_prior_precision(value, sub: Params, log_joint: LogJoint, hessian: str) -> Params:
    """Per-leaf prior precision of the Bayesian parameters.

    Concrete values are checked and reduced on the host (a leaf whose
    entries are all equal becomes a scalar), so no per-op kernels compile.

    Args:
      value: ``None`` (read ``1 / prior.stddev(params)^2`` from the log-joint's
        Gaussian prior), a scalar, or a tree like ``sub`` whose leaves
        broadcast against the parameters.

    Raises:
      ValueError: for a non-Gaussian prior without an explicit value, a
        non-positive value, or a non-scalar per-leaf value under KFAC.
    """
    if value is None:
        if log_joint.prior.stddev is None:
            raise ValueError(
                "the Laplace approximation needs a Gaussian prior (bj.priors.gaussian or "
                "bj.priors.layerwise, which expose stddev) or an explicit prior_precision="
            )
        leaves, treedef = jax.tree.flatten(sub)
        shapes = tuple(jax.ShapeDtypeStruct(jnp.shape(leaf), jnp.result_type(leaf)) for leaf in leaves)
        tree = _precision_of_prior(log_joint.prior, treedef, shapes)
    elif jax.tree.structure(value) == jax.tree.structure(sub):
        tree = value
    elif jnp.ndim(value) == 0:
        tree = jax.tree.map(lambda _: value, sub)
    else:
        raise ValueError(
            "prior_precision must be a scalar or a tree with the structure of the Bayesian parameters "
            f"{jax.tree.structure(sub)}"
        )

    def per_leaf(delta, leaf):
        shape = jnp.shape(delta)
        if jnp.broadcast_shapes(shape, leaf.shape) != leaf.shape:
            raise ValueError(f"prior_precision leaf of shape {shape} does not broadcast to {leaf.shape}")
        values = concrete(delta)
        if values is not None:
            check_positive("prior_precision", values)
            if values.size and np.all(values == values.flat[0]):
                values = values.reshape(-1)[0]
            delta = jax.device_put(np.asarray(values, leaf.dtype))  # jnp.asarray would compile a copy
        else:
            delta = jnp.asarray(delta).astype(leaf.dtype)
            if hessian == "kfac" and value is None:  # a traced prior scale: bj priors are constant per leaf
                delta = delta.reshape(-1)[0]
        if hessian == "kfac" and jnp.ndim(delta) > 0:
            raise ValueError("hessian='kfac' needs one prior precision per kernel and per bias (a scalar per leaf)")
        return delta

    return jax.tree.map(per_leaf, tree, sub)
