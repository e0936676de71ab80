"""A run's identity: what a checkpoint must match to be resumed or extended.

A snapshot (:mod:`bayesjax.driver.checkpoint`) is reused only by a run with
the same identity: its settings, key, initial parameters or state, data, the
log-joint (temperature, tempering, num_data, prior, likelihood, model) and
the algorithm's hyperparameters. ``num_steps`` is left out, so a finished run
can be extended to more steps.

Algorithms are NamedTuples of closures (builders close over their
hyperparameters, :func:`bayesjax.targeting.targeting` binds the log-joint with
:func:`functools.partial`), so :func:`fingerprint` walks what a function
holds: its code (bytecode, constants and the names it reads), its defaults,
the values in its closure cells, a partial's arguments, a bound method's
object, the fields of NamedTuples and dataclasses (a ``LogJoint``, a
``Prior``, a flax module), containers, and arrays by their bytes. Recorded
by their type name only: any other object (a ``Mesh``, a data loader), and
the code of functions that a function calls by a global name (library
internals). So a checkpoint is refused when a step size, a temperature, an
optimizer's learning rate or schedule, a prior scale, a width or a builder's
code changes, and reused when only the device count, the progress bar or
``checkpoint_every`` changes.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import types
from typing import Any

import jax
import numpy as np

from bayesjax.base import Algorithm
from bayesjax.checks import concrete

_SCALARS = (type(None), bool, int, float, complex, str)


class _Walk:
    """One depth-first walk feeding a SHA-256; objects seen before are fed as back-references."""

    def __init__(self):
        self.digest = hashlib.sha256()
        self.seen: dict[int, int] = {}
        self.alive: list[Any] = []  # keeps walked objects alive, so no id is reused mid-walk

    def feed(self, *parts: Any) -> None:
        self.digest.update(repr(parts).encode())

    def visit(self, value: Any) -> None:
        if isinstance(value, _SCALARS):
            self.feed(type(value).__name__, value)
            return
        if isinstance(value, bytes):
            self.feed("bytes", hashlib.sha256(value).hexdigest())
            return
        if id(value) in self.seen:
            self.feed("ref", self.seen[id(value)])
            return
        self.seen[id(value)] = len(self.seen)
        self.alive.append(value)
        self.visit_new(value)

    def visit_new(self, value: Any) -> None:
        if isinstance(value, (np.ndarray, np.generic, jax.Array)):
            self.visit_array(value)
        elif isinstance(value, (tuple, list)):
            self.feed(type(value).__qualname__, len(value))
            for item in value:
                self.visit(item)
        elif isinstance(value, dict):
            self.feed(type(value).__qualname__, len(value))
            for k, v in value.items():
                self.visit(k)
                self.visit(v)
        elif isinstance(value, (set, frozenset)):
            self.feed(type(value).__qualname__, sorted(fingerprint(item) for item in value))
        elif isinstance(value, functools.partial):
            self.feed("partial")
            self.visit(value.func)
            self.visit(value.args)
            self.visit(dict(sorted(value.keywords.items())))
        elif isinstance(value, types.MethodType):
            self.feed("method")
            self.visit(value.__func__)
            self.visit(value.__self__)
        elif isinstance(value, types.FunctionType):
            self.visit_function(value)
        elif isinstance(value, types.CodeType):
            self.feed("code", value.co_name, hashlib.sha256(value.co_code).hexdigest(), value.co_names)
            self.visit(value.co_consts)
        elif isinstance(value, (type, types.ModuleType)):
            self.feed(type(value).__name__, getattr(value, "__module__", None), getattr(value, "__qualname__",
                                                                                        value.__name__))
        elif dataclasses.is_dataclass(value):
            self.feed("dataclass", type(value).__module__, type(value).__qualname__)
            for field in dataclasses.fields(value):
                self.visit(field.name)
                self.visit(getattr(value, field.name, None))
        elif hasattr(value, "__wrapped__"):  # jax.jit, custom_jvp, lru_cache, functools.wraps
            self.feed("wrapper", type(value).__qualname__)
            self.visit(value.__wrapped__)
        else:
            self.feed("object", type(value).__module__, type(value).__qualname__,
                      getattr(value, "__qualname__", getattr(value, "__name__", None)))

    def visit_array(self, value) -> None:
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            self.feed("key", str(jax.random.key_impl(value)))
            value = jax.random.key_data(value)
        array = concrete(value)
        if array is None:  # a tracer: its value is not known here
            self.feed("traced", value.shape, str(value.dtype))
            return
        self.feed("array", array.shape, array.dtype.str)
        self.digest.update(np.ascontiguousarray(array).tobytes())

    def visit_function(self, fn: types.FunctionType) -> None:
        self.feed("function", fn.__module__, fn.__qualname__)
        self.visit(fn.__code__)
        self.visit(fn.__defaults__)
        self.visit(dict(sorted((fn.__kwdefaults__ or {}).items())))
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            self.visit(name)
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not yet filled
                self.feed("empty cell")
                continue
            self.visit(contents)


def fingerprint(value: Any) -> str:
    """A SHA-256 hex digest of ``value`` and everything it holds (see the module docstring).

    Equal for equal builds in any process (no ``id`` or ``hash`` enters it).

    Example:
      >>> from bayesjax.driver.identity import fingerprint
      >>> fingerprint(bj.sgld(lj, 0.1)) == fingerprint(bj.sgld(lj, 0.1))
      True
      >>> fingerprint(bj.sgld(lj, 0.1)) == fingerprint(bj.sgld(lj, 0.2))
      False
    """
    walk = _Walk()
    walk.visit(value)
    return walk.digest.hexdigest()


def _temperature(value) -> float | list | str:
    array = concrete(value)
    return "traced" if array is None else array.tolist()


def log_joint_identity(algorithm: Algorithm) -> dict | None:
    """The log-joint's parts: ``num_data``, ``temperature``, ``tempering`` as values; prior, likelihood, model as fingerprints."""
    lj = algorithm.log_joint
    if lj is None:
        return None
    return {"num_data": int(lj.num_data), "temperature": _temperature(lj.temperature), "tempering": lj.tempering,
            "prior": fingerprint(lj.prior), "likelihood": fingerprint(lj.likelihood),
            "model": fingerprint((lj.apply, lj.model))}


def run_identity(algorithm: Algorithm, settings: dict, key, inputs: Any) -> dict:
    """What a checkpoint must match: settings (JSON values), key, the inputs' bytes, log-joint and algorithm.

    Args:
      algorithm: the algorithm as given to :func:`bayesjax.run` (before its sample buffer).
      settings: JSON-serializable settings of the run (batch size, chains, burn-in, ...), not ``num_steps``.
      key: the run's key.
      inputs: a pytree of what the run starts from and reads (initial params or state, data, a
        per-chain init function, an augmentation); fingerprinted.
    """
    return {**settings, "key": np.asarray(jax.random.key_data(key)).tolist(), "inputs": fingerprint(inputs),
            "log_joint": log_joint_identity(algorithm),
            "algorithm": fingerprint((algorithm.init, algorithm.step, algorithm.sample, algorithm.markov_chain))}
