"""Counting XLA compiles with JAX's public monitoring events."""
import contextlib
from typing import Iterator

import jax

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles() -> Iterator[list[str]]:
    """Yields a list that gains one entry per XLA backend compile inside the block."""
    compiles: list[str] = []

    def listener(name: str, duration: float, **kwargs) -> None:
        if name == BACKEND_COMPILE:
            compiles.append(kwargs.get("fun_name", name))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiles
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
