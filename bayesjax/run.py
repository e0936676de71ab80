"""``bj.run``: checks a run's arguments against the algorithm, model and data, then drives it.

The compiled loop is :mod:`bayesjax.driver.scan`; chunked driving with a
progress bar, checkpoints and streamed batches is
:mod:`bayesjax.driver.chunked`; the result is a
:class:`~bayesjax.driver.posterior.Posterior`. No inference method imports
this module: the driver sits above the methods.
"""
from __future__ import annotations

import math
import os
import warnings
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bayesjax import sharding
from bayesjax.base import Algorithm, is_markov_chain
from bayesjax.checks import check_batch, check_data, check_int, check_key, check_params, check_positive
from bayesjax.driver import checkpoint as snapshots
from bayesjax.driver import resume
from bayesjax.driver.chunked import Arrays, Start, chunk_length, drive
from bayesjax.driver.identity import run_identity
from bayesjax.driver.posterior import DivergenceWarning, Posterior, describe
from bayesjax.driver.scan import RunConfig, buffered
from bayesjax.driver.stream import CHUNK_BYTES, Stream, as_batch, is_stream
from bayesjax.likelihoods import check_targets
from bayesjax.model_state import training_inputs
from bayesjax.models.model import Variables
from bayesjax.types import Array, Batch, Params, PRNGKey, State

STATISTICS_STREAM = 2**32 - 1
"""``fold_in(key, STATISTICS_STREAM)`` picks the inputs kept to recompute BatchNorm statistics (no chain's index)."""
DEFAULT_BUFFER_BYTES = 2**30
"""The default sample buffer (every retained position) is capped at this many bytes, with a warning."""


def run(
    key: PRNGKey,
    algorithm: Algorithm,
    params: Params | Callable[[PRNGKey], Params] | None,
    data: Batch | Iterable[Any],
    num_steps: int,
    batch_size: int | None = None,
    num_chains: int = 1,
    burnin: int = 0,
    thin: int = 1,
    num_samples: int | None = None,
    progress: bool = True,
    mesh: Mesh | None = None,
    augment: Callable[[PRNGKey, Array], Array] | None = None,
    shuffle: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 60.0,
    info_every: int = 1,
    init_state: State | None = None,
    start_step: int | None = None,
) -> Posterior:
    """Runs an algorithm over minibatches of ``data``, vmapped over chains.

    Markov chains (states with a ``position``, or declared
    ``markov_chain=True``) are wrapped in
    :func:`bayesjax.buffer.with_sample_buffer`: after ``burnin`` steps every
    ``thin``-th position is kept, up to ``num_samples`` per chain (default: all
    of them). Other algorithms (MAP, VI, SWAG, ensembles) draw from their own
    distribution: ``burnin`` or ``thin`` given to them is an error.

    Chain k's randomness at step t depends on ``(key, k, t)`` only, so a run
    continued from its state with the same key and data equals one longer
    run, bitwise (``init_state``), and so does a checkpointed run rerun with
    more steps.

    Args:
      key: PRNG key of the whole run.
      algorithm: any :class:`Algorithm`.
      params: initial parameters shared by all chains, or a function
        ``key -> params`` that gives each chain its own start (vmapped in jit);
        None with ``init_state``. The weights must be floating and, given as
        arrays, finite (checked before compiling, naming the leaf); a
        function's output is evaluated inside the jit and cannot be checked
        first: a non-finite start then shows as a Markov chain's divergence
        at step 1, and as NaN in the results of other methods.
      data: in-memory ``(x, y)`` arrays with a common leading axis (or a dict
        with keys ``"x"`` and ``"y"``), or an iterable of batches (a
        generator, ``tf.data``'s numpy iterator, a torch ``DataLoader`` with
        ``drop_last=True``; see :mod:`bayesjax.driver.stream`). A batch is any
        pytree of arrays with one leading batch axis; a log-joint reads
        ``(x, y)`` (a dict ``{"x", "y"}`` becomes that pair; ``x`` may hold
        several inputs). A stream is fed in its order, one batch per step and
        the same batch to every chain, each chunk's batches stacked and
        scanned in one jit; the first batch is checked before anything
        compiles (shapes, finite values, labels against the likelihood), the
        others must match its shapes, and a stream that ends before
        ``num_steps`` is an error naming the step. Its ``num_data`` (the
        log-likelihood's scale) is the log-joint's.
      num_steps: steps per chain (more steps, with ``init_state``).
      batch_size: minibatch size (default: the full batch; a stream's own).
      num_chains: independent chains (or members), vmapped.
      burnin: steps discarded before collecting samples (counted from the
        chain's first step, also when continued).
      thin: keep every ``thin``-th position after burn-in.
      num_samples: sample buffer capacity per chain (default: every retained
        position, capped at :data:`DEFAULT_BUFFER_BYTES` over all chains; the
        buffer keeps the latest). Like ``burnin`` and ``thin``, for Markov
        chains only.
      progress: show a progress bar (fed from inside the jit).
      mesh: a :func:`bayesjax.sharding.mesh`; chains are split over its
        ``"chains"`` axis (``num_chains`` must divide evenly) and, for
        full-batch runs, the data over its ``"data"`` axis. Chain k's
        randomness depends on k alone, so results do not depend on the
        device count up to float32 rounding: bitwise when each device's
        program has the same shapes, else differing in the last bits, which
        a long chaotic trajectory can amplify (see the README).
      augment: data augmentation ``(key, x_batch) -> x_batch`` applied to
        each chain's batch inside the jit (see :mod:`bayesjax.augment`).
      shuffle: in-memory data: draw each epoch's minibatches in a fresh
        random order (the default); ``False`` feeds the data in order, batch t
        being examples ``[t * batch_size, (t + 1) * batch_size)`` (wrapping
        around), as a stream would. A stream is never shuffled (``True`` is
        an error).
      checkpoint: a file path. The run's state is snapshotted there
        (atomically) every ``checkpoint_every`` seconds and at the end; rerun
        with the same arguments and it resumes from the snapshot, with the
        results of an uninterrupted run; rerun with a larger ``num_steps`` and
        it extends the run. A snapshot of other settings, key, initial
        parameters, data (a stream: its first batch), log-joint (temperature,
        tempering, num_data, prior, likelihood, model) or algorithm
        hyperparameters is refused (:mod:`bayesjax.driver.identity` says what
        is recorded), and so is a damaged file, naming it. The path is
        checked before anything compiles; temporary files of killed writes
        are removed. A resumed stream is fed again from its first batch and
        skips the steps done. With several processes (``jax.distributed``)
        the path must be on a file system they share: the chains' states are
        gathered to every host (each must hold them all), process 0 writes
        the one file while the others wait, and every process resumes from
        it, keeping its own shards.
      checkpoint_every: seconds between snapshots.
      info_every: keep the info of every ``info_every``-th step (steps k, 2k,
        ... counted from 1); 0 keeps none (``Posterior.info`` is None). The
        other steps skip computing it, which saves time where a step is
        cheap (one chain of a small model) and memory on long runs.
        With ``info_every != 1`` divergence is detected in the positions
        alone (see :func:`buffered`).
      init_state: continue from this state: a ``Posterior.state`` (or the
        same pytree restored from disk) with ``num_chains`` chains, run with
        the same ``burnin`` and ``thin``; pass ``params=None``. Its sample
        buffer grows to the longer run's ``num_samples``.
      start_step: the step ``init_state`` is at (``Posterior.steps``). A
        Markov chain's state counts its steps, so it may be left out there;
        other states need it.

    Returns:
      A :class:`Posterior` with ``.sample(key, n)``, the final ``state``,
      per-step ``info`` (``[num_steps // info_every, num_chains, ...]``) and
      the ``steps`` the chains are at. For a model with BatchNorm state and
      a method whose samples no step visited (SWA, SWAG, VI:
      ``algorithm.recompute_statistics``), it keeps a random subset of the
      training inputs (:data:`bayesjax.model_state.STATISTICS_BATCHES`
      batches) and ``sample`` recomputes each draw's statistics on them
      (Maddox et al. 2019); a run fed from a stream keeps the running ones.

    Example:
      >>> post = bj.run(key, bj.map(lj, optax.adam(1e-3)), params, (x, y),
      ...               num_steps=20, batch_size=128)
      >>> samples = post.sample(key, 10)
      >>> more = bj.run(key, bj.map(lj, optax.adam(1e-3)), None, (x, y), num_steps=10, batch_size=128,
      ...               init_state=post.state, start_step=post.steps, progress=False)   # = one 30-step run
      >>> stream = (({"x": x[i:i + 50], "y": y[i:i + 50]}) for i in range(0, 200, 50))
      >>> bj.run(key, bj.map(lj, optax.adam(1e-3)), params, stream, num_steps=4, progress=False).steps
      4
    """
    check_key(key)
    if wrapped_chains := algorithm.num_chains:
        raise ValueError(f"bj.run vmaps chains itself (each with its own minibatches): pass the method that "
                         f"bj.vmap_chains wrapped, with num_chains={wrapped_chains}")
    num_steps = check_int("num_steps", num_steps)
    num_chains = check_int("num_chains", num_chains)
    thin = check_int("thin", thin)
    burnin = check_int("burnin", burnin, minimum=0)
    info_every = check_int("info_every", info_every, minimum=0)
    if info_every > num_steps:
        raise ValueError(f"info_every={info_every} exceeds num_steps={num_steps}: no step's info would be kept")
    sharding.check_divisible(num_chains, mesh)
    log_joint = algorithm.log_joint

    stream = Stream(data, mesh) if is_stream(data) else None
    if stream is None:
        x, y = first = check_data(as_batch(data) if isinstance(data, dict) else data)
        num_data = x.shape[0]
        batch_size = num_data if batch_size is None else check_int("batch_size", batch_size)
        if batch_size > num_data:
            raise ValueError(f"batch_size {batch_size} exceeds the number of examples {num_data}")
        if log_joint is not None and log_joint.num_data != num_data:
            raise ValueError(
                f"the log-joint was built with num_data={log_joint.num_data} but data has {num_data} examples"
            )
    else:
        first = stream.first
        batch_size = stream_batch_size(stream, batch_size, shuffle, log_joint, augment)
    shuffle = stream is None and shuffle is not False

    if init_state is None:
        if start_step is not None:
            raise ValueError("start_step= is the step of an init_state=; pass both or neither")
        init_fn = params if callable(params) else None
        params_like = jax.eval_shape(init_fn, key) if init_fn else params
        if params_like is None:
            raise ValueError("params is None: pass initial parameters, a function key -> params, or init_state=")
        check_params(params_like.params if isinstance(params_like, Variables) else params_like,
                     floating=log_joint is not None)
        if init_fn is None:
            check_params(params, floating=False)
        step0 = 0
    else:
        if params is not None:
            raise ValueError("with init_state= pass params=None: the state holds the parameters")
        init_fn, params_like = None, resume.params_like(algorithm, key, init_state)
        step0 = continued_step(init_state, start_step, info_every)

    if log_joint is not None:
        x_like = jax.tree.map(lambda a: jax.ShapeDtypeStruct((1,) + a.shape[1:], a.dtype), first[0])
        outputs = jax.eval_shape(log_joint.apply, params_like, x_like)
        check_targets(log_joint.likelihood, first[1], outputs.shape[-1])

    chain = is_markov_chain(algorithm, jax.eval_shape(algorithm.init, key, params_like))
    if not chain and (burnin or thin != 1 or num_samples is not None):
        raise ValueError(
            f"burnin={burnin}, thin={thin} and num_samples={num_samples} apply to Markov chains, whose sample buffer "
            f"they size (a state with a `position`, or an algorithm declared markov_chain=True); this algorithm's "
            f"state is not one: its samples are drawn from its own distribution (Posterior.sample(key, n)). Leave "
            f"them at their defaults"
        )
    buffer = sample_buffer(params_like, num_chains, step0 + num_steps, burnin, thin, num_samples, init_state) \
        if chain else None

    config = RunConfig(num_steps, batch_size, num_chains, buffer, init_fn, augment, mesh, 0, shuffle, info_every,
                       streamed=stream is not None)
    states = None
    if init_state is not None:
        if chain and resume.capacity(init_state) is None:
            raise ValueError("init_state of a Markov chain is a Posterior.state, with its sample buffer")
        try:
            states = resume.grow_buffer(init_state, buffer[0]) if chain else init_state
        except ValueError as error:
            raise ValueError(f"init_state: {error}") from None
        resume.check_matches(states, jax.eval_shape(buffered(algorithm, config).init, key, params_like), num_chains)

    block = max(info_every, 1)
    num_blocks = -(-num_steps // block)
    blocks = chunk_length(num_blocks) if progress or checkpoint is not None else num_blocks
    if stream is not None:
        blocks = min(blocks, max(1, CHUNK_BYTES // (block * stream.batch_bytes)))
    identity = None
    if checkpoint is not None:
        check_positive("checkpoint_every", checkpoint_every, allow_zero=True)
        snapshots.prepare(checkpoint)
        settings = {"batch_size": batch_size, "num_chains": num_chains, "burnin": burnin, "thin": thin,
                    "num_samples": num_samples, "shuffle": shuffle, "info_every": info_every, "start_step": step0,
                    "stream": stream is not None}
        identity = run_identity(algorithm, settings, key, (None if init_fn else params, init_fn, init_state, augment,
                                                           first if stream is not None else data))
    if stream is None:
        feed = Arrays(place_data(x, y, mesh, full_batch=batch_size == num_data))
    else:
        feed = stream
    start = Start(None if init_fn or states is not None else params, states, step0)
    state, info = drive(algorithm, config, block * blocks, key, start, feed, progress, checkpoint, checkpoint_every,
                        identity)
    statistics = None
    if algorithm.recompute_statistics and isinstance(params_like, Variables) and stream is None:
        statistics = training_inputs(log_joint.model, x, batch_size, jax.random.fold_in(key, STATISTICS_STREAM))
    posterior = Posterior(buffered(algorithm, config), state, info, step0 + num_steps, statistics, step0,
                          max(info_every, 1))
    if posterior.divergences:
        warnings.warn(f"{describe(posterior.divergences)} (see Posterior.divergences)", DivergenceWarning, stacklevel=2)
    return posterior


def stream_batch_size(stream: Stream, batch_size: int | None, shuffle: bool | None, log_joint, augment) -> int:
    """The stream's batch size, after checking its first batch against the run's arguments and log-joint."""
    size = check_batch(stream.first, "the stream's first batch")
    if shuffle:
        raise ValueError("a stream is fed in its own order: shuffle=True applies to in-memory data (shuffle the "
                         "stream itself)")
    if batch_size is not None and batch_size != size:
        raise ValueError(f"batch_size={batch_size} but the stream's first batch has {size} examples")
    pair = isinstance(stream.first, tuple) and len(stream.first) == 2
    if (log_joint is not None or augment is not None) and not pair:
        raise ValueError(f"the log-joint and augment= read batches (x, y) or dicts with keys 'x' and 'y'; the "
                         f"stream's first batch is {jax.tree.structure(stream.first)}")
    if log_joint is not None and size > log_joint.num_data:
        raise ValueError(f"the stream's batches of {size} exceed the log-joint's num_data={log_joint.num_data}")
    return size


def continued_step(init_state: State, start_step: int | None, info_every: int) -> int:
    """The step ``init_state`` is at: its own count (a sample buffer's) or ``start_step``, which must agree."""
    counted = resume.counted_step(init_state)
    if start_step is None and counted is None:
        raise ValueError("init_state does not count its steps: pass start_step= (the Posterior's .steps); "
                         "the step numbers the minibatches and keys, so a continued run equals one longer run")
    step = counted if start_step is None else check_int("start_step", start_step, minimum=0)
    if counted is not None and step != counted:
        raise ValueError(f"start_step={step} but init_state has taken {counted} steps")
    if info_every > 1 and step % info_every:
        raise ValueError(f"start_step={step} must be a multiple of info_every={info_every}")
    return step


def sample_buffer(params_like: Params, num_chains: int, total_steps: int, burnin: int, thin: int,
                  num_samples: int | None, init_state: State | None) -> tuple[int, int, int]:
    """``(capacity, burnin, thin)`` of a Markov chain's sample buffer over ``total_steps`` steps.

    By default every retained position, capped at :data:`DEFAULT_BUFFER_BYTES`
    (with a warning), and never fewer slots than a continued ``init_state`` has.
    """
    if burnin + thin > total_steps:
        raise ValueError(f"no position would be kept: the first is at step burnin + thin = {burnin + thin}, "
                         f"after the last step {total_steps}")
    retained = math.ceil((total_steps - burnin) / thin)
    position_bytes = num_chains * sum(
        np.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(params_like)
    )
    capacity = num_samples or max(min(retained, max(1, DEFAULT_BUFFER_BYTES // position_bytes)),
                                  (init_state is not None and resume.capacity(init_state)) or 0)
    if capacity < retained and num_samples is None:
        warnings.warn(
            f"keeping all {retained} positions x {num_chains} chains would take "
            f"{retained * position_bytes / 2**30:.1f} GiB; the sample buffer keeps the last {capacity} "
            f"per chain ({capacity * position_bytes / 2**30:.2f} GiB): pass thin= or num_samples= to choose",
            stacklevel=3,
        )
    return check_int("num_samples", capacity), burnin, thin


def place_data(x, y, mesh: Mesh | None, full_batch: bool) -> tuple[Array, Array]:
    """Data on the mesh: split over its data axis for full-batch runs, else replicated."""
    if mesh is None:
        return jnp.asarray(x), jnp.asarray(y)
    if full_batch and sharding.DATA in mesh.shape and x.shape[0] % mesh.shape[sharding.DATA] == 0:
        placement = sharding.data_sharding(mesh)
    else:
        placement = NamedSharding(mesh, PartitionSpec())
    return jax.device_put(x, placement), jax.device_put(y, placement)
