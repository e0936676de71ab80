"""A stopwatch that splits a block's wall clock into JAX compilation and the rest."""
from __future__ import annotations

import time

import jax


class Stopwatch:
    """Wall-clock seconds of a block, split into JAX compilation and the rest.

    Compilation is the union of JAX's ``/jax/core/compile/*`` event spans
    (tracing, lowering, XLA compilation or a persistent-cache load) inside
    the block, read through :mod:`jax.monitoring`.

    Attributes (after the block):
      seconds: wall clock minus compilation.
      compile_seconds: compilation.

    Example:
      >>> with Stopwatch() as watch:
      ...     _ = jax.block_until_ready(jax.jit(lambda x: x + 1)(1.0))
      >>> watch.seconds >= 0 and watch.compile_seconds >= 0
      True
    """

    def __enter__(self) -> "Stopwatch":
        self._spans: list[tuple[float, float]] = []
        jax.monitoring.register_event_time_span_listener(self._listen)
        self._start = time.time()
        return self

    def _listen(self, event: str, start: float, end: float, **kwargs) -> None:
        if event.startswith("/jax/core/compile/"):
            self._spans.append((start, end))

    def __exit__(self, *exc) -> None:
        end = time.time()
        jax.monitoring.unregister_event_time_span_listener(self._listen)
        covered, reach = 0.0, self._start
        for start, stop in sorted(self._spans):
            start, stop = max(start, reach), min(stop, end)
            if stop > start:
                covered += stop - start
                reach = stop
        self.compile_seconds = covered
        self.seconds = end - self._start - covered
