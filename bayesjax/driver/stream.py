"""Data that streams: an iterable of batches fed to the compiled chunks of a run.

:func:`bayesjax.run` takes in-memory arrays ``(x, y)`` or an iterable of
batches: a generator, ``tf.data``'s ``as_numpy_iterator()``, a torch
``DataLoader`` (with ``drop_last=True``), grain. A batch is a pytree of arrays
sharing one leading batch axis, passed to the algorithm's ``step`` as it
comes, except that a dict with the keys ``"x"`` and ``"y"`` (and no others)
becomes the pair ``(x, y)``, the batch a :class:`~bayesjax.logjoint.LogJoint`
reads; ``x`` may itself be a pytree (several inputs) for a model that takes one.

The driver pulls a chunk of batches, stacks them on a leading step axis and
scans over them inside one jit (:func:`bayesjax.driver.scan.advance_chains`),
so a streamed step costs what an in-memory step costs; the next chunk is
pulled while the device runs the previous one. Every chain reads the same
batch. A chunk's stacked batches stay under :data:`CHUNK_BYTES`.
"""
from __future__ import annotations

from typing import Any, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bayesjax.types import ArrayTree

CHUNK_BYTES = 2**26
"""The batches of one streamed chunk take at most this many bytes (at least one step's)."""


def is_stream(data: Any) -> bool:
    """Whether ``data`` is an iterable of batches, not in-memory data (a pair, a dict of arrays, an array)."""
    return not isinstance(data, (tuple, list, dict, str, bytes)) and not hasattr(data, "shape") and (
        hasattr(data, "__iter__") or hasattr(data, "__next__"))


def as_batch(batch: Any) -> ArrayTree:
    """A batch as the driver feeds it: ``{"x": x, "y": y}`` becomes ``(x, y)``, a list a tuple; leaves arrays.

    JAX arrays stay where they are; other leaves (NumPy, torch tensors,
    Python numbers) become NumPy arrays.
    """
    if isinstance(batch, dict) and set(batch) == {"x", "y"}:
        batch = (batch["x"], batch["y"])
    elif isinstance(batch, list):
        batch = tuple(batch)
    return jax.tree.map(lambda a: a if isinstance(a, jax.Array) else np.asarray(a), batch)


def _layout(batch: ArrayTree):
    leaves, treedef = jax.tree.flatten(batch)
    return treedef, [(leaf.shape, leaf.dtype) for leaf in leaves]


class Stream:
    """The batches of an iterable, pulled one chunk at a time.

    Attributes:
      first: the first batch (pulled on construction, so it can be checked
        before anything compiles).
      batch_size: its leading axis.
    """

    def __init__(self, data: Iterable, mesh: Mesh | None = None):
        self.iterator = iter(data)
        try:
            self.first = as_batch(next(self.iterator))
        except StopIteration:
            raise ValueError("the data stream is empty: it yielded no batch") from None
        leaves = jax.tree.leaves(self.first)
        if not leaves or any(np.ndim(leaf) == 0 for leaf in leaves):
            raise ValueError(f"a batch needs arrays with a leading batch axis, got {jax.tree.map(np.shape, self.first)}")
        self.batch_size = leaves[0].shape[0]
        self.batch_bytes = sum(leaf.nbytes for leaf in leaves)
        self.layout = _layout(self.first)
        self.mesh = mesh
        self.pending = [self.first]
        self.pulled = 0  # batches handed out (or skipped) so far

    def _next(self, num_steps: int) -> ArrayTree:
        if self.pending:
            return self.pending.pop()
        try:
            batch = as_batch(next(self.iterator))
        except StopIteration:
            raise ValueError(f"the data stream ended after {self.pulled} batches: step {self.pulled + 1} of "
                             f"num_steps={num_steps} has no batch") from None
        if _layout(batch) != self.layout:
            raise ValueError(
                f"batch {self.pulled + 1} of the stream has shapes {jax.tree.map(np.shape, batch)}, the first had "
                f"{jax.tree.map(np.shape, self.first)}: every batch needs the first's structure, shapes and dtypes "
                f"(drop a last partial batch, e.g. drop_last=True in a torch DataLoader)"
            )
        return batch

    def skip(self, steps: int, num_steps: int) -> None:
        """Discards the batches of ``steps`` steps (already run, as a resumed checkpoint says)."""
        for _ in range(steps):
            self._next(num_steps)
            self.pulled += 1

    def chunk(self, steps: int, length: int, num_steps: int) -> ArrayTree:
        """The next ``steps`` batches stacked on a leading axis, padded with zeros to ``length`` and placed.

        Raises:
          ValueError: the stream ends early (naming the step without a
            batch) or a batch differs from the first in structure or shape.
        """
        batches = []
        for _ in range(steps):
            batches.append(self._next(num_steps))
            self.pulled += 1
        batches += [jax.tree.map(np.zeros_like, self.first)] * (length - steps)
        on_device = all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(batches))
        stacked = jax.tree.map(lambda *leaves: (jnp if on_device else np).stack(leaves), *batches)
        placement = NamedSharding(self.mesh, PartitionSpec()) if self.mesh is not None else None
        return jax.device_put(stacked, placement)
