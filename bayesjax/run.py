"""``bj.run``: checks a run's arguments against the algorithm, model and data, then drives it.

The compiled loop is :mod:`bayesjax.driver.scan`; chunked driving with a
progress bar and checkpoints is :mod:`bayesjax.driver.chunked`; the result is
a :class:`~bayesjax.driver.posterior.Posterior`. No inference method imports
this module: the driver sits above the methods.
"""
from __future__ import annotations

import math
import os
import warnings
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bayesjax import sharding
from bayesjax.base import Algorithm, is_markov_chain
from bayesjax.checks import check_data, check_int, check_key, check_positive
from bayesjax.driver.chunked import chunk_length, drive, run_identity
from bayesjax.driver.posterior import DivergenceWarning, Posterior, describe
from bayesjax.driver.scan import RunConfig, buffered
from bayesjax.likelihoods import check_targets
from bayesjax.types import Array, Batch, Params, PRNGKey

DEFAULT_BUFFER_BYTES = 2**30
"""The default sample buffer (every retained position) is capped at this many bytes, with a warning."""


def run(
    key: PRNGKey,
    algorithm: Algorithm,
    params: Params | Callable[[PRNGKey], Params],
    data: Batch,
    num_steps: int,
    batch_size: int | None = None,
    num_chains: int = 1,
    burnin: int = 0,
    thin: int = 1,
    num_samples: int | None = None,
    progress: bool = True,
    mesh: Mesh | None = None,
    augment: Callable[[PRNGKey, Array], Array] | None = None,
    shuffle: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 60.0,
    info_every: int = 1,
) -> Posterior:
    """Runs an algorithm over minibatches of ``data``, vmapped over chains.

    Markov chains (states with a ``position``) are wrapped in
    :func:`bayesjax.buffer.with_sample_buffer`: after ``burnin`` steps every
    ``thin``-th position is kept, up to ``num_samples`` per chain (default: all
    of them). Other algorithms ignore ``burnin``/``thin``.

    Args:
      key: PRNG key of the whole run.
      algorithm: any :class:`Algorithm`.
      params: initial parameters shared by all chains, or a function
        ``key -> params`` that gives each chain its own start (vmapped in jit).
      data: ``(x, y)`` arrays with a common leading axis.
      num_steps: steps per chain.
      batch_size: minibatch size (default: the full batch).
      num_chains: independent chains (or members), vmapped.
      burnin: steps discarded before collecting samples.
      thin: keep every ``thin``-th position after burn-in.
      num_samples: sample buffer capacity per chain (default: every retained
        position, capped at :data:`DEFAULT_BUFFER_BYTES` over all chains; the
        buffer keeps the latest).
      progress: show a progress bar (fed from inside the jit).
      mesh: a :func:`bayesjax.sharding.mesh`; chains are split over its
        ``"chains"`` axis (``num_chains`` must divide evenly) and, for
        full-batch runs, the data over its ``"data"`` axis. Results do not
        depend on the device count.
      augment: data augmentation ``(key, x_batch) -> x_batch`` applied to
        each chain's batch inside the jit (see :mod:`bayesjax.augment`).
      shuffle: draw each epoch's minibatches in a fresh random order (the
        default); ``False`` feeds the data in order, batch t being examples
        ``[t * batch_size, (t + 1) * batch_size)`` (wrapping around): a stream,
        for online learning.
      checkpoint: a file path. The run's state is snapshotted there
        (atomically) every ``checkpoint_every`` seconds and at the end; rerun
        with the same arguments and it resumes from the snapshot, with the
        results of an uninterrupted run. A snapshot of other settings, key or
        data is refused with an error. The algorithm's hyperparameters are
        not recorded: use one path per run.
      checkpoint_every: seconds between snapshots.
      info_every: keep the info of every ``info_every``-th step (steps k, 2k,
        ... counted from 1); 0 keeps none (``Posterior.info`` is None). The
        other steps skip computing it, which saves time where a step is
        cheap (one chain of a small model) and memory on long runs.
        With ``info_every != 1`` divergence is detected in the positions
        alone (see :func:`buffered`).

    Returns:
      A :class:`Posterior` with ``.sample(key, n)``, the final ``state`` and
      per-step ``info`` (``[num_steps // info_every, num_chains, ...]``).

    Example:
      >>> post = bj.run(key, bj.map(lj, optax.adam(1e-3)), params, (x, y),
      ...               num_steps=20, batch_size=128)
      >>> samples = post.sample(key, 10)
    """
    check_key(key)
    if wrapped_chains := algorithm.num_chains:
        raise ValueError(f"bj.run vmaps chains itself (each with its own minibatches): pass the method that "
                         f"bj.vmap_chains wrapped, with num_chains={wrapped_chains}")
    x, y = check_data(data)
    num_data = x.shape[0]
    num_steps = check_int("num_steps", num_steps)
    num_chains = check_int("num_chains", num_chains)
    thin = check_int("thin", thin)
    burnin = check_int("burnin", burnin, minimum=0)
    info_every = check_int("info_every", info_every, minimum=0)
    if info_every > num_steps:
        raise ValueError(f"info_every={info_every} exceeds num_steps={num_steps}: no step's info would be kept")
    batch_size = num_data if batch_size is None else check_int("batch_size", batch_size)
    if batch_size > num_data:
        raise ValueError(f"batch_size {batch_size} exceeds the number of examples {num_data}")
    sharding.check_divisible(num_chains, mesh)
    init_fn = params if callable(params) else None
    params_like = jax.eval_shape(init_fn, key) if init_fn else params

    log_joint = algorithm.log_joint
    if log_joint is not None:
        if log_joint.num_data != num_data:
            raise ValueError(
                f"the log-joint was built with num_data={log_joint.num_data} but data has {num_data} examples"
            )
        outputs = jax.eval_shape(log_joint.apply, params_like, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype))
        check_targets(log_joint.likelihood, y, outputs.shape[-1])

    buffer = None
    if is_markov_chain(algorithm, jax.eval_shape(algorithm.init, key, params_like)):
        if burnin + thin > num_steps:
            raise ValueError(f"no position would be kept: the first is at step burnin + thin = {burnin + thin}, "
                             f"after the last step {num_steps}")
        retained = math.ceil((num_steps - burnin) / thin)
        position_bytes = num_chains * sum(
            np.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(params_like)
        )
        capacity = num_samples or min(retained, max(1, DEFAULT_BUFFER_BYTES // position_bytes))
        if capacity < retained and num_samples is None:
            warnings.warn(
                f"keeping all {retained} positions x {num_chains} chains would take "
                f"{retained * position_bytes / 2**30:.1f} GiB; the sample buffer keeps the last {capacity} "
                f"per chain ({capacity * position_bytes / 2**30:.2f} GiB): pass thin= or num_samples= to choose",
                stacklevel=2,
            )
        buffer = (check_int("num_samples", capacity), burnin, thin)

    config = RunConfig(num_steps, batch_size, num_chains, buffer, init_fn, augment, mesh, 0, bool(shuffle),
                       info_every)
    x, y = place_data(x, y, mesh, full_batch=batch_size == num_data)
    block = max(info_every, 1)
    num_blocks = -(-num_steps // block)
    chunk = block * (chunk_length(num_blocks) if progress or checkpoint is not None else num_blocks)
    snapshot_identity = None
    if checkpoint is not None:
        check_positive("checkpoint_every", checkpoint_every, allow_zero=True)
        if jax.process_count() > 1:
            raise NotImplementedError("checkpoint= works in a single process; with jax.distributed, snapshot "
                                      "Posterior.state yourself (e.g. with orbax-checkpoint)")
        snapshot_identity = run_identity(config, chunk, key, params, x, y)
    state, info = drive(algorithm, config, chunk, key, None if init_fn else params, x, y, progress,
                         checkpoint, checkpoint_every, snapshot_identity)
    posterior = Posterior(buffered(algorithm, config), state, info)
    if posterior.divergences:
        warnings.warn(f"{describe(posterior.divergences)} (see Posterior.divergences)", DivergenceWarning, stacklevel=2)
    return posterior


def place_data(x, y, mesh: Mesh | None, full_batch: bool) -> tuple[Array, Array]:
    """Data on the mesh: split over its data axis for full-batch runs, else replicated."""
    if mesh is None:
        return jnp.asarray(x), jnp.asarray(y)
    if full_batch and x.shape[0] % mesh.shape[sharding.DATA] == 0:
        placement = sharding.data_sharding(mesh)
    else:
        placement = NamedSharding(mesh, PartitionSpec())
    return jax.device_put(x, placement), jax.device_put(y, placement)
